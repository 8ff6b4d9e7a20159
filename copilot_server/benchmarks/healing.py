"""What token healing costs, with the real default model's tokenizer (no generation).

    .venv/bin/python -m copilot_server.benchmarks.healing

- the sorted vocabulary, built once per model at load;
- per request: the healing plan (a few bisections over the sorted table) and, for scale,
  the whole FIM prompt built with it, over the prefixes of real lines typed character
  by character;
- per constrained token: the logits mask (a numpy slice of the sorted ids plus the exact
  prefixes), on a vocabulary-sized score row.

Measured 2026-12 on the 2-core AMD EPYC of the README (load avg ~5 from other work):
vocabulary 0.6-0.9 s once; healing +0.01 ms per request (p95 0.02 ms); the mask 0.05 ms
per constrained token (0.3 ms when only a space was cut: 53k allowed tokens). The bar was
2 ms per request.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

# The vocabulary-only engine is the tests' helper (tests/gguf_factory.py): this bench runs
# from a checkout, next to the tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from gguf_factory import load_vocab_engine  # noqa: E402

from ..context import Context  # noqa: E402
from ..engines.models import resolve_model_path  # noqa: E402
from ..prompts import build_fim_prompt  # noqa: E402
from ..prompts import healing as healing_module  # noqa: E402
from ..stats import percentile  # noqa: E402

LINES = [
    "        settings = json.load(handle)",
    "    return sorted(names, key=lambda n: n.lower())",
    "        for line in handle:",
    "    if not isinstance(value, (int, float)):",
    "        raise ValueError(f'bad value: {value!r}')",
]
PREFIX = "import json\n\n\ndef load(path):\n    with open(path) as handle:\n" * 8


def _ms(samples: list[float]) -> str:
    p50, p95 = percentile(samples, 50), percentile(samples, 95)
    return f"p50 {p50:.3f} ms, p95 {p95:.3f} ms (n={len(samples)})"


def main() -> int:
    engine = load_vocab_engine(resolve_model_path(None))
    started = time.perf_counter()
    vocab = healing_module.vocabulary_for(engine)
    print(f"vocabulary: {vocab.size} tokens sorted in {time.perf_counter() - started:.2f} s")
    prompts: list[float] = []
    plans: list[float] = []
    masks: list[float] = []
    scores = np.zeros(vocab.size, dtype=np.float32)
    for line in LINES:
        for end in range(5, len(line) + 1):
            ctx = Context("a.py", "python", PREFIX, line[:end], "", "\n")
            build_fim_prompt(engine, ctx)  # warm the token cache, as typing does
            t0 = time.perf_counter()
            prompt = build_fim_prompt(engine, ctx)
            prompts.append((time.perf_counter() - t0) * 1000)
            tokens = engine.tokenize(line[:end])
            t0 = time.perf_counter()
            healing_module.plan(healing_module.vocabulary_for(engine), tokens, line[:end])
            plans.append((time.perf_counter() - t0) * 1000)
            if prompt.heal:
                constraint = healing_module.Constraint(vocab, prompt.heal, len(prompt.tokens))
                ids = np.asarray(prompt.tokens)
                t0 = time.perf_counter()
                constraint(ids, scores)
                masks.append((time.perf_counter() - t0) * 1000)
    print(f"whole healed prompt (token cache warm): {_ms(prompts)}")
    print(f"healing's share (the plan):            {_ms(plans)}")
    print(f"mask per constrained token:            {_ms(masks)}")
    engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

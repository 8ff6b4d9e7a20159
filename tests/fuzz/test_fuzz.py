"""CI fuzz: malformed frames and random edit sequences through a real server over stdio.

The model's output does not matter here, so the server runs with a model path that does
not exist: every completion is answered at once (empty) and the rest of the path (frames,
params, documents, positions, tree-sitter, code actions) is the real one. The raw client
does its own framing, so it can send what no LSP library would. The server's view of a
document is read with `copilot.debugDocument` (on with COPILOT_SERVER_DEBUG=1) and
compared with `fuzzing.reference_apply`, an LSP sync written independently of ours.
The long run of the same is `python -m copilot_server.benchmarks.soak`.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from copilot_server.benchmarks.fuzzing import (
    RawClient,
    error_codes,
    max_popups_per_minute,
    random_frames,
    random_sequence,
    same_text,
    server_env,
)

MISSING_MODEL = "/nonexistent/copilot-fuzz.gguf"
FRAMES = 2500
SEQUENCES = 150  # per encoding
STEPS = 8
FRAMES_URI = "file:///fuzz/frames.py"


def _start(tmp_path, name: str) -> RawClient:
    return RawClient(
        ["--stdio", "--model", MISSING_MODEL], server_env(tmp_path), tmp_path / f"{name}.err"
    )


def _stderr(client: RawClient) -> str:
    return client.stderr_path.read_text(errors="replace")


def test_malformed_frames_each_get_exactly_one_answer(tmp_path, fuzz_seed):
    client = _start(tmp_path, "frames")
    try:
        client.initialize()
        client.open(FRAMES_URI, "def f(x):\n    return x\n\nclass A:\n    pass\n")
        rng = random.Random(fuzz_seed)
        owed: list = []
        kinds: dict = {}
        for fuzz in random_frames(rng, FRAMES, FRAMES_URI, first_id=1000):
            client.send_bytes(fuzz.data)
            owed += fuzz.answer_ids
            kinds.update(dict.fromkeys(fuzz.answer_ids, fuzz.kind))
        # Answered after every frame before it was read: a barrier, then a grace period.
        client.request("workspace/executeCommand", {"command": "copilot.status"}, timeout=120)
        missing = client.wait_all(owed, timeout=30)
        assert client.proc.poll() is None, f"seed {fuzz_seed}: the server exited"
        assert not missing, (
            f"seed {fuzz_seed}: {len(missing)} of {len(owed)} requests unanswered, "
            f"by kind {Counter(kinds[i] for i in missing)}"
        )
        twice = [i for i in owed if len(client.answers[i]) > 1]
        assert not twice, f"seed {fuzz_seed}: answered more than once: {repr(twice)[:300]}"
        codes = error_codes(client, owed)
        internal = [i for i in owed if client.answers[i][0].get("error", {}).get("code") == -32603]
        assert not internal, (
            f"seed {fuzz_seed}: internal errors for bad input: "
            f"{[(kinds[i], client.answers[i][0]['error']['message']) for i in internal[:5]]}"
        )
        assert codes[-32602] > 100 and codes[-32600] > 10, codes  # the fuzz reached them
        assert max_popups_per_minute(client.popups()) <= 1, client.popups()
        stderr = _stderr(client)
        assert "Traceback" not in stderr, stderr[-3000:]
        assert len(stderr) < 512_000, f"{len(stderr)} bytes of stderr"
    finally:
        client.close()


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8"])
def test_random_edit_sequences_leave_the_editors_text(tmp_path, fuzz_seed, encoding):
    client = _start(tmp_path, encoding)
    try:
        offered = ["utf-8", "utf-16"] if encoding == "utf-8" else None  # as Neovim, VS Code
        answer = client.initialize(offered)
        assert answer["result"]["capabilities"]["positionEncoding"] == encoding
        rng = random.Random(f"{fuzz_seed}-{encoding}")
        checks: list = []
        requests: list = []
        for n in range(SEQUENCES):
            surrogates = rng.random() < 0.3
            uri = f"file:///fuzz/{encoding}/doc{n}.py"
            seq = random_sequence(rng, uri, encoding, STEPS, surrogates)
            client.open(uri, seq.text)
            for step, changes in enumerate(seq.notifications):
                client.change(uri, step + 2, changes)
                checks.append((client.server_text_async(uri), n, step, seq))
                if rng.random() < 0.3:  # requests at random places: answered, never -32603
                    position = {"line": rng.randrange(6), "character": rng.randrange(12)}
                    ident = {"uri": uri}
                    requests.append(
                        client.request_async(
                            "textDocument/inlineCompletion",
                            {
                                "textDocument": ident,
                                "position": position,
                                "context": {"triggerKind": 2},
                            },
                        )
                    )
                    requests.append(
                        client.request_async(
                            "textDocument/codeAction",
                            {
                                "textDocument": ident,
                                "range": {"start": position, "end": position},
                                "context": {"diagnostics": []},
                            },
                        )
                    )
            client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        missing = client.wait_all([c[0] for c in checks] + requests, timeout=120)
        assert not missing, f"seed {fuzz_seed}: {len(missing)} unanswered"
        diverged = []
        for msg_id, n, step, seq in checks:
            held = client.answers[msg_id][0].get("result", {}).get("text")
            if held is None or not same_text(held, seq.expected[step]):
                diverged.append((n, step, seq))
        if diverged:
            n, step, seq = diverged[0]
            pytest.fail(
                f"seed {fuzz_seed} {encoding}: {len(diverged)} of {len(checks)} views diverged; "
                f"first: sequence {n} step {step}\nopened {seq.text!r}\n"
                f"changes {seq.notifications[: step + 1]!r}\nexpected {seq.expected[step]!r}"
            )
        codes = error_codes(client, requests)
        assert codes[-32603] == 0, codes
        assert "Traceback" not in _stderr(client), _stderr(client)[-3000:]
    finally:
        client.close()

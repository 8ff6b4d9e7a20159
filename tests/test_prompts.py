"""Prompt templates, checked token by token against vocabulary-only GGUFs of each family.

tests/gguf_factory.py writes each family's tokenizer metadata (special token texts and
types, BOS/EOS, add-BOS and space-prefix flags, chat template) into a small GGUF that
llama.cpp loads for real. Expected prompts come from the file read back with the gguf
package and from llama.cpp's own tokenizer, never from ids typed into the tests.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import gguf
import pytest
from gguf_factory import FAMILIES, load_vocab_engine, vocabulary, write_family

from copilot_server.context import Context, Snippet
from copilot_server.prompts import PromptError, build_fim_prompt, describe_template
from copilot_server.prompts.chat import chat_request_text, render_chat
from copilot_server.prompts.templates import resolve_template

PREFIX = "import os\n\n\ndef main():\n"
LINE = "    path = os."
SUFFIX = "\n    return path\n"
SNIPPET = Snippet("definition", "util.py", "def join(a, b):\n    return a + b\n")


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gguf")
    loaded = {}
    for key in FAMILIES:
        path = write_family(key, directory)
        loaded[key] = (load_vocab_engine(path), path)
    yield loaded
    for engine, _path in loaded.values():
        engine.close()


def ctx(line: str = LINE, snippets: tuple[Snippet, ...] = (), language: str = "python") -> Context:
    return Context(
        path="app/main.py",
        language=language,
        prefix=PREFIX,
        line_prefix=line,
        line_suffix="",
        suffix=SUFFIX,
        snippets=snippets,
    )


def rendered(engine, tokens: list[int]) -> str:
    """The prompt as text, special tokens shown by their vocabulary text."""
    model = engine._llm._model
    return b"".join(model.detokenize([t], special=True) for t in tokens).decode()


def vocab_ids(path: Path) -> dict[str, int]:
    return {text: index for index, text in enumerate(vocabulary(path))}


# -- detection ---------------------------------------------------------------------------

DETECTED = {
    "qwen2.5-coder": "qwen2.5-coder",
    "qwen2.5-coder-instruct": "qwen2.5-coder",
    "codestral": "codestral",
    "starcoder2": "starcoder2",
    "starcoder": "starcoder",
    "codellama": "codellama",
    "deepseek-coder": "deepseek-coder",
    "deepseek-coder-instruct": "deepseek-coder",
    "codegemma": "codegemma",
    "codegemma-it": "codegemma",
    "mistral-7b-instruct": "chat",
    "mixtral-8x7b-instruct": "chat",
}


@pytest.mark.parametrize("key", list(DETECTED))
def test_template_detected_from_gguf(engines, key):
    engine, _path = engines[key]
    template = resolve_template(engine, "auto")
    assert template.name == DETECTED[key]
    if template.kind == "fim" and engine.info.fim.available:
        # Our reading of the vocabulary agrees with the FIM ids llama.cpp found itself.
        fim = engine.info.fim
        assert (template.prefix, template.suffix) == (fim.prefix, fim.suffix)


def test_codestral_fim_tokens_found_although_llama_cpp_has_none(engines):
    engine, path = engines["codestral"]
    assert not engine.info.fim.available
    ids = vocab_ids(path)
    template = resolve_template(engine)
    assert (template.prefix, template.suffix) == (ids["[PREFIX]"], ids["[SUFFIX]"])


@pytest.mark.parametrize(
    ("key", "warned"),
    [
        ("qwen2.5-coder", False),
        ("qwen2.5-coder-instruct", True),
        ("deepseek-coder", False),
        ("deepseek-coder-instruct", True),
        ("codegemma", False),
        ("codegemma-it", True),
        ("codestral", False),  # no base build exists
    ],
)
def test_instruct_build_used_for_fim_is_warned_about(engines, key, warned):
    engine, _path = engines[key]
    text = describe_template(engine, "auto")
    assert ("warning" in text) == warned, text
    if warned:
        assert "base build" in text


def test_describe_names_format_and_repo_tokens(engines):
    text = describe_template(engines["qwen2.5-coder"][0], "auto")
    assert "Qwen2.5-Coder" in text and "<|fim_prefix|>" in text and "<|file_sep|>" in text
    assert "chat template" in describe_template(engines["mistral-7b-instruct"][0], "auto")


def test_setting_overrides_detection(engines):
    engine, _path = engines["qwen2.5-coder-instruct"]
    assert resolve_template(engine, "chat").kind == "chat"
    assert resolve_template(engine, "qwen").name == "qwen2.5-coder"
    with pytest.raises(PromptError, match="lacks"):
        resolve_template(engine, "starcoder")
    with pytest.raises(PromptError, match="unknown prompt template"):
        resolve_template(engine, "gpt-17")


# -- FIM layouts, token by token ---------------------------------------------------------

P, L, S = PREFIX, LINE, SUFFIX
# The formats as the model cards document them, with the GGUF's own token texts.
FORMATS = {
    "qwen2.5-coder": f"<|fim_prefix|>{P}<|fim_suffix|>{S}<|fim_middle|>{L}",
    "starcoder2": f"<fim_prefix>{P}<fim_suffix>{S}<fim_middle>{L}",
    "starcoder": f"<fim_prefix>{P}<fim_suffix>{S}<fim_middle>{L}",
    "deepseek-coder": f"<｜begin▁of▁sentence｜><｜fim▁begin｜>{P}<｜fim▁hole｜>{S}<｜fim▁end｜>{L}",
    "codegemma": f"<bos><|fim_prefix|>{P}<|fim_suffix|>{S}<|fim_middle|>{L}",
    # Meta's reference: "<PRE> {prefix} <SUF>{suffix} <MID>" (the tokens are "▁<PRE>"…).
    "codellama": f"<s>▁<PRE> {P}▁<SUF>{S}▁<MID>{L}",
    # mistral-common: "<s>[SUFFIX]suffix[PREFIX] prefix".
    "codestral": f"<s>[SUFFIX]{S}[PREFIX] {P}{L}",
}
SPECIALS = {
    "qwen2.5-coder": ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"],
    "starcoder2": ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"],
    "starcoder": ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"],
    "deepseek-coder": [
        "<｜begin▁of▁sentence｜>",
        "<｜fim▁begin｜>",
        "<｜fim▁hole｜>",
        "<｜fim▁end｜>",
    ],
    "codegemma": ["<bos>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"],
    "codellama": ["<s>", "▁<PRE>", "▁<SUF>", "▁<MID>"],
    "codestral": ["<s>", "[SUFFIX]", "[PREFIX]"],
}
END_TOKENS = {
    "qwen2.5-coder": ["<|endoftext|>", "<|file_sep|>", "<|fim_pad|>"],
    "starcoder2": ["<|endoftext|>", "<file_sep>"],
    "starcoder": ["<|endoftext|>"],
    "deepseek-coder": ["<｜end▁of▁sentence｜>", "<|EOT|>"],
    "codegemma": ["<eos>", "<|file_separator|>"],
    "codellama": ["</s>", "▁<EOT>"],
    "codestral": ["</s>"],
}


@pytest.mark.parametrize("key", list(FORMATS))
def test_fim_prompt_matches_the_documented_format(engines, key):
    engine, path = engines[key]
    prompt = build_fim_prompt(engine, ctx())
    assert prompt.template == key
    assert rendered(engine, prompt.tokens) == FORMATS[key]
    ids = vocab_ids(path)
    specials = {ids[text] for texts in SPECIALS.values() for text in texts if text in ids}
    assert [t for t in prompt.tokens if t in specials] == [ids[t] for t in SPECIALS[key]]
    assert {ids[t] for t in END_TOKENS[key]} <= prompt.stop_tokens


@pytest.mark.parametrize("key", list(FORMATS))
def test_fim_text_parts_are_llama_cpp_tokenization(engines, key):
    """Between the special tokens, each part is exactly what llama.cpp makes of its text."""
    engine, _path = engines[key]
    prompt = build_fim_prompt(engine, ctx())
    parts = {p.name: p for p in prompt.parts}
    assert parts["prefix"].text == P and parts["line"].text == L
    # The prefix is tokenized as llama.cpp tokenizes it alone (SentencePiece: with "▁").
    prefix_tokens = engine.tokenize(P)
    assert _contains(prompt.tokens, prefix_tokens)
    assert len(prefix_tokens) == parts["prefix"].tokens


@pytest.mark.parametrize("key", list(FORMATS))
def test_typing_on_the_line_only_appends_tokens(engines, key):
    engine, _path = engines[key]
    shorter = build_fim_prompt(engine, ctx(line="    pa"))
    longer = build_fim_prompt(engine, ctx(line="    path = os.getcwd("))
    line_tokens = shorter.parts[-1].tokens
    stable = shorter.tokens[: len(shorter.tokens) - line_tokens]
    assert longer.tokens[: len(stable)] == stable
    template = resolve_template(engine)
    # The typed line follows the middle token (suffix-first Codestral: the prefix).
    last = template.middle if template.middle is not None else engine.tokenize(P)[-1]
    assert stable[-1] == last


REPO_FORMATS = {
    "qwen2.5-coder": (
        f"<|repo_name|>workspace\n<|file_sep|>util.py\n{SNIPPET.text}<|file_sep|>app/main.py\n"
        f"<|fim_prefix|>{P}<|fim_suffix|>{S}<|fim_middle|>{L}"
    ),
    # StarCoder2 paper: <repo_name>name<file_sep>path\ncode<file_sep><fim_prefix>path\n…
    "starcoder2": (
        f"<repo_name>workspace<file_sep>util.py\n{SNIPPET.text}<file_sep><fim_prefix>app/main.py\n"
        f"{P}<fim_suffix>{S}<fim_middle>{L}"
    ),
    "codegemma": (
        f"<bos><|file_separator|>util.py\n{SNIPPET.text}<|file_separator|>app/main.py\n"
        f"<|fim_prefix|>{P}<|fim_suffix|>{S}<|fim_middle|>{L}"
    ),
    # No file separators: other files' code goes before the prefix.
    "deepseek-coder": (
        f"<｜begin▁of▁sentence｜><｜fim▁begin｜>{SNIPPET.text}\n{P}<｜fim▁hole｜>{S}<｜fim▁end｜>{L}"
    ),
}


@pytest.mark.parametrize("key", list(REPO_FORMATS))
def test_repo_level_context(engines, key):
    engine, _path = engines[key]
    prompt = build_fim_prompt(engine, ctx(snippets=(SNIPPET,)))
    assert rendered(engine, prompt.tokens) == REPO_FORMATS[key]


def test_code_that_contains_special_token_text_stays_text(engines):
    engine, path = engines["starcoder2"]
    ids = vocab_ids(path)
    sneaky = Context("a.py", "python", 'x = "<fim_middle>"\n', "y = ", "", "\n")
    prompt = build_fim_prompt(engine, sneaky)
    assert prompt.tokens.count(ids["<fim_middle>"]) == 1


# -- chat fallback -----------------------------------------------------------------------


def _gguf_chat_template(path: Path) -> str:
    field = gguf.GGUFReader(str(path)).fields["tokenizer.chat_template"]
    return field.contents()


@pytest.mark.parametrize(
    ("key", "setting", "bos", "eos"),
    [
        ("mistral-7b-instruct", "auto", "<s>", "</s>"),
        ("mixtral-8x7b-instruct", "auto", "<s>", "</s>"),
        ("qwen2.5-coder-instruct", "chat", "<|endoftext|>", "<|im_end|>"),
        ("codegemma-it", "chat", "<bos>", "<eos>"),
    ],
)
def test_chat_prompt_uses_the_gguf_chat_template(engines, key, setting, bos, eos):
    engine, path = engines[key]
    context = ctx()
    prompt = build_fim_prompt(engine, context, setting)
    assert prompt.chat and prompt.template == "chat"
    messages = [{"role": "user", "content": chat_request_text(context)}]
    text = render_chat(_gguf_chat_template(path), messages, bos_token=bos, eos_token=eos)
    expected = engine.tokenize(text + "```python\n" + PREFIX + LINE, special=True)
    bos_id = vocab_ids(path)[bos]
    adds_bos = engine.info.metadata.get("tokenizer.ggml.add_bos_token") == "true"
    if adds_bos and expected[0] != bos_id:
        expected = [bos_id, *expected]
    assert prompt.tokens == expected
    assert prompt.middle_prefix == LINE
    assert engine.info.eos_token in prompt.stop_tokens


def test_chat_request_asks_for_the_missing_code_only():
    text = chat_request_text(ctx())
    assert SUFFIX.strip() in text and "code only, no explanations" in text
    # The code before the cursor and the typed line open the answer instead.
    assert PREFIX not in text and LINE not in text


def test_chat_prompt_keeps_code_with_end_of_turn_text_as_text(engines):
    engine, path = engines["qwen2.5-coder-instruct"]
    ids = vocab_ids(path)
    sneaky = Context("a.py", "python", 'END = "<|im_end|>"\n', "x = ", "", "\n")
    plain = build_fim_prompt(engine, ctx(), "chat")
    prompt = build_fim_prompt(engine, sneaky, "chat")
    assert prompt.tokens.count(ids["<|im_end|>"]) == plain.tokens.count(ids["<|im_end|>"])


def test_chat_typing_only_appends(engines):
    engine, _path = engines["mistral-7b-instruct"]
    shorter = build_fim_prompt(engine, ctx(line="    pa"))
    longer = build_fim_prompt(engine, ctx(line="    path = os."))
    stable = shorter.tokens[: len(shorter.tokens) - shorter.parts[-1].tokens]
    assert shorter.parts[-1].name == "line" and len(stable) > shorter.parts[0].tokens
    assert longer.tokens[: len(stable)] == stable


def _contains(haystack: list[int], needle: list[int]) -> bool:
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


# -- the real model ----------------------------------------------------------------------


@pytest.mark.model
@pytest.mark.parametrize("template", ["auto", "chat"])
def test_done_when_case_with_the_real_model(template):
    """Cursor in the with-block of load_config (end of file) → the suggestion loads the JSON.

    Greedy Qwen2.5-Coder-0.5B-Instruct writes "config = json.load(f)" then "return config"
    one level up; the trimmer keeps both (the with-block is the function's last) and
    stops before the next definition. The chat fallback (same model, its chat template)
    must get there too.
    """
    from copilot_server.completion import CompletionRequest
    from copilot_server.completion.service import CompletionService
    from copilot_server.config import Settings
    from copilot_server.engines.loader import EngineLoader

    text = "import json\n\n\ndef load_config(path):\n    with open(path) as f:\n        "
    offset = len(text)
    settings = Settings().merged({"model": {"template": template}})
    loader = EngineLoader(settings)
    loader.start()
    service = CompletionService(settings, loader)
    try:
        # Explicit (invoked): the whole block, not its first line answered early.
        request = CompletionRequest(
            "file:///t/config.py", "/t/config.py", "python", text, offset, invoked=True
        )
        result = asyncio.run(service.complete(request))
    finally:
        service.close()
        loader.close()
    lines = result.text.split("\n")
    assert "json.load(f)" in lines[0]
    assert not any(line.startswith("def ") for line in lines)
    assert 0 < result.tokens_shown <= result.tokens_generated


def test_template_choice_and_warning_are_logged(tmp_path, caplog):
    engine = load_vocab_engine(write_family("deepseek-coder-instruct", tmp_path))
    try:
        with caplog.at_level("INFO", logger="copilot_server.prompts"):
            build_fim_prompt(engine, ctx())
            build_fim_prompt(engine, ctx(line="    pa"))
    finally:
        engine.close()
    chosen = [r for r in caplog.records if "prompt template" in r.getMessage()]
    assert len(chosen) == 1  # once per engine, not per request
    assert "DeepSeek-Coder" in chosen[0].getMessage()
    assert any(r.levelname == "WARNING" and "base build" in r.getMessage() for r in caplog.records)

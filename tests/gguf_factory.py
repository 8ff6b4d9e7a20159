"""Write small vocabulary-only GGUF files, one per model family, for prompt tests.

Each family's file carries the metadata its real conversions carry: tokenizer model
(byte-level BPE "gpt2" or SentencePiece "llama"), pre-tokenizer, the family's special
tokens with their real texts and types, BOS/EOS ids, add-BOS / add-space-prefix flags,
the chat template. The vocabulary is tiny (bytes + a few code words) so files are a few
kilobytes, but llama.cpp loads them for real (`vocab_only`), so tokenization and the FIM
token ids the tests see are llama.cpp's own, not assumptions typed into the tests.

`load_vocab_engine(path)` returns a real `LlamaEngine` whose llama.cpp handle is a
vocabulary-only model: tokenize/detokenize/info work; generate does not.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import gguf

NORMAL = gguf.TokenType.NORMAL
CONTROL = gguf.TokenType.CONTROL
USER_DEFINED = gguf.TokenType.USER_DEFINED
UNKNOWN = gguf.TokenType.UNKNOWN
BYTE = gguf.TokenType.BYTE

# Words whose pieces get merged, so tokenization is not just bytes.
_WORDS = [
    "def",
    "return",
    "import",
    "self",
    "with",
    "open",
    "json",
    "load",
    "path",
    "config",
    "function",
    "const",
    "let",
    "func",
    "package",
    "main",
    "fn",
    "pub",
    "int",
    "for",
    "if",
    "else",
    "print",
    "true",
    "false",
    "None",
    "null",
    "    ",
    "  ",
    "\n",
    "\n\n",
]

# Chat templates as the real GGUFs carry them (tokenizer.chat_template).
MISTRAL_INSTRUCT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant "
    "roles are supported!') }}{% endif %}{% endfor %}"
)

QWEN_TEMPLATE = (
    "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == "
    "'system' %}\n        {{- messages[0]['content'] }}\n    {%- else %}\n        {{- 'You are "
    "Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n    "
    '{{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.'
    '\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" '
    '}}\n    {%- for tool in tools %}\n        {{- "\\n" }}\n        {{- tool | tojson }}\n    '
    '{%- endfor %}\n    {{- "\\n</tools>\\n\\nFor each function call, return a json object with '
    "function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n"
    '{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call>'
    "<|im_end|>\\n\" }}\n{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n        "
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}"
    "\n        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a "
    "helpful assistant.<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- for message in "
    'messages %}\n    {%- if (message.role == "user") or (message.role == "system" and not '
    'loop.first) or (message.role == "assistant" and not message.tool_calls) %}\n        {{- '
    "'<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n    "
    "{%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        "
    "{%- endif %}\n        {%- for tool_call in message.tool_calls %}\n            {%- if "
    "tool_call.function is defined %}\n                {%- set tool_call = tool_call.function %}"
    '\n            {%- endif %}\n            {{- \'\\n<tool_call>\\n{"name": "\' }}\n            '
    '{{- tool_call.name }}\n            {{- \'", "arguments": \' }}\n            {{- '
    "tool_call.arguments | tojson }}\n            {{- '}\\n</tool_call>' }}\n        {%- endfor "
    "%}\n        {{- '<|im_end|>\\n' }}\n    {%- elif message.role == \"tool\" %}\n        {%- if "
    '(loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}\n            {{- '
    "'<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n        "
    "{{- message.content }}\n        {{- '\\n</tool_response>' }}\n        {%- if loop.last or "
    "(messages[loop.index0 + 1].role != \"tool\") %}\n            {{- '<|im_end|>\\n' }}\n        "
    "{%- endif %}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- "
    "'<|im_start|>assistant\\n' }}\n{%- endif %}\n"
)

GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
    "supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}"
    "{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)

DEEPSEEK_INSTRUCT_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}\n{% set add_generation_prompt = false %}\n"
    "{% endif %}\n{%- set ns = namespace(found=false) -%}\n{%- for message in messages -%}\n"
    "    {%- if message['role'] == 'system' -%}\n        {%- set ns.found = true -%}\n    "
    "{%- endif -%}\n{%- endfor -%}\n{{bos_token}}{%- if not ns.found -%}\n{{'You are an AI "
    "programming assistant, utilizing the Deepseek Coder model, developed by Deepseek Company, "
    "and you only answer questions related to computer science. For politically sensitive "
    "questions, security and privacy issues, and other non-computer science questions, you will "
    "refuse to answer\\n'}}\n{%- endif %}\n{%- for message in messages %}\n    {%- if "
    "message['role'] == 'system' %}\n{{ message['content'] }}\n    {%- else %}\n        {%- if "
    "message['role'] == 'user' %}\n{{'### Instruction:\\n' + message['content'] + '\\n'}}\n        "
    "{%- else %}\n{{'### Response:\\n' + message['content'] + '\\n<|EOT|>\\n'}}\n        {%- endif "
    "%}\n    {%- endif %}\n{%- endfor %}\n{% if add_generation_prompt %}\n{{'### Response:'}}\n"
    "{% endif %}"
)


@dataclass(frozen=True)
class Family:
    """One model family's vocabulary facts, as its real GGUF conversions carry them."""

    key: str
    name: str  # general.name
    architecture: str
    tokenizer: str  # "gpt2" (byte-level BPE) or "llama" (SentencePiece)
    pre: str | None = None  # tokenizer.ggml.pre (BPE only)
    # Special tokens placed before the normal vocabulary: (text, type).
    head: tuple[tuple[str, int], ...] = ()
    # Special tokens placed after it.
    tail: tuple[tuple[str, int], ...] = ()
    bos: str | None = None
    eos: str | None = None
    eot: str | None = None
    add_bos: bool | None = None
    add_space_prefix: bool | None = None
    chat_template: str | None = None
    finetune: str | None = None
    basename: str | None = None
    size_label: str | None = None
    # Write tokenizer.ggml.fim_*_token_id keys (newer converters do, older do not).
    fim_ids: tuple[str, str, str] | None = None
    extra: dict[str, str] = field(default_factory=dict)


_QWEN_TAIL = (
    ("<|endoftext|>", CONTROL),
    ("<|im_start|>", CONTROL),
    ("<|im_end|>", CONTROL),
    ("<|object_ref_start|>", CONTROL),
    ("<|object_ref_end|>", CONTROL),
    ("<|fim_prefix|>", USER_DEFINED),
    ("<|fim_middle|>", USER_DEFINED),
    ("<|fim_suffix|>", USER_DEFINED),
    ("<|fim_pad|>", USER_DEFINED),
    ("<|repo_name|>", USER_DEFINED),
    ("<|file_sep|>", USER_DEFINED),
)
_SPM_HEAD = (("<unk>", UNKNOWN), ("<s>", CONTROL), ("</s>", CONTROL))
_MISTRAL_V3_HEAD = _SPM_HEAD + (
    ("[INST]", CONTROL),
    ("[/INST]", CONTROL),
    ("[TOOL_CALLS]", CONTROL),
    ("[AVAILABLE_TOOLS]", CONTROL),
    ("[/AVAILABLE_TOOLS]", CONTROL),
    ("[TOOL_RESULTS]", CONTROL),
    ("[/TOOL_RESULTS]", CONTROL),
    ("[control_8]", CONTROL),
    ("[control_9]", CONTROL),
    ("[control_10]", CONTROL),
    ("[control_11]", CONTROL),
    ("[control_12]", CONTROL),
    ("[control_13]", CONTROL),
    ("[control_14]", CONTROL),
    ("[control_15]", CONTROL),
    ("[control_16]", CONTROL),
    ("[control_17]", CONTROL),
    ("[control_18]", CONTROL),
    ("[control_19]", CONTROL),
    ("[SUFFIX]", CONTROL),
    ("[PREFIX]", CONTROL),
    ("[MIDDLE]", CONTROL),
)
_STARCODER2_HEAD = (
    ("<|endoftext|>", CONTROL),
    ("<fim_prefix>", CONTROL),
    ("<fim_middle>", CONTROL),
    ("<fim_suffix>", CONTROL),
    ("<fim_pad>", CONTROL),
    ("<repo_name>", CONTROL),
    ("<file_sep>", CONTROL),
    ("<issue_start>", CONTROL),
    ("<issue_comment>", CONTROL),
    ("<issue_closed>", CONTROL),
    ("<jupyter_start>", CONTROL),
    ("<jupyter_text>", CONTROL),
    ("<jupyter_code>", CONTROL),
    ("<jupyter_output>", CONTROL),
    ("<jupyter_script>", CONTROL),
    ("<empty_output>", CONTROL),
    ("<code_to_intermediate>", CONTROL),
    ("<intermediate_to_code>", CONTROL),
    ("<pr>", CONTROL),
)
_STARCODER_HEAD = (
    ("<|endoftext|>", CONTROL),
    ("<fim_prefix>", CONTROL),
    ("<fim_middle>", CONTROL),
    ("<fim_suffix>", CONTROL),
    ("<fim_pad>", CONTROL),
    ("<filename>", CONTROL),
    ("<gh_stars>", CONTROL),
    ("<issue_start>", CONTROL),
    ("<issue_comment>", CONTROL),
    ("<issue_closed>", CONTROL),
    ("<jupyter_start>", CONTROL),
    ("<jupyter_text>", CONTROL),
    ("<jupyter_code>", CONTROL),
    ("<jupyter_output>", CONTROL),
    ("<empty_output>", CONTROL),
    ("<commit_before>", CONTROL),
    ("<commit_msg>", CONTROL),
    ("<commit_after>", CONTROL),
    ("<reponame>", CONTROL),
)
_CODELLAMA_TAIL = (
    ("▁<PRE>", USER_DEFINED),
    ("▁<SUF>", USER_DEFINED),
    ("▁<MID>", USER_DEFINED),
    ("▁<EOT>", USER_DEFINED),
)
_DEEPSEEK_TAIL = (
    ("<｜begin▁of▁sentence｜>", CONTROL),
    ("<｜end▁of▁sentence｜>", CONTROL),
    ("<｜fim▁hole｜>", USER_DEFINED),
    ("<｜fim▁begin｜>", USER_DEFINED),
    ("<｜fim▁end｜>", USER_DEFINED),
    ("<pad>", USER_DEFINED),
    ("<|User|>", USER_DEFINED),
    ("<|Assistant|>", USER_DEFINED),
    ("<|EOT|>", CONTROL),
)
_GEMMA_HEAD = (
    ("<pad>", CONTROL),
    ("<eos>", CONTROL),
    ("<bos>", CONTROL),
    ("<unk>", UNKNOWN),
    ("<mask>", USER_DEFINED),
    ("<2mass>", USER_DEFINED),
    ("[@BOS@]", USER_DEFINED),
    ("<|fim_prefix|>", USER_DEFINED),
    ("<|fim_middle|>", USER_DEFINED),
    ("<|fim_suffix|>", USER_DEFINED),
    ("<|file_separator|>", USER_DEFINED),
    ("<start_of_turn>", CONTROL),
    ("<end_of_turn>", CONTROL),
)

FAMILIES: dict[str, Family] = {
    f.key: f
    for f in (
        Family(
            "qwen2.5-coder",
            "Qwen2.5 Coder 1.5B",
            "qwen2",
            "gpt2",
            "qwen2",
            tail=_QWEN_TAIL,
            bos="<|endoftext|>",
            eos="<|endoftext|>",
            add_bos=False,
            chat_template=QWEN_TEMPLATE,
            basename="Qwen2.5-Coder",
            size_label="1.5B",
            fim_ids=("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
        ),
        Family(
            "qwen2.5-coder-instruct",
            "Qwen2.5 Coder 0.5B Instruct",
            "qwen2",
            "gpt2",
            "qwen2",
            tail=_QWEN_TAIL,
            bos="<|endoftext|>",
            eos="<|im_end|>",
            add_bos=False,
            chat_template=QWEN_TEMPLATE,
            finetune="Instruct",
            basename="Qwen2.5-Coder",
            size_label="0.5B",
        ),
        Family(
            "codestral",
            "Codestral 22B v0.1",
            "llama",
            "llama",
            head=_MISTRAL_V3_HEAD,
            bos="<s>",
            eos="</s>",
            add_bos=True,
            add_space_prefix=True,
            chat_template=MISTRAL_INSTRUCT_TEMPLATE,
            basename="Codestral",
            size_label="22B",
        ),
        Family(
            "starcoder2",
            "StarCoder2 3B",
            "starcoder2",
            "gpt2",
            "starcoder",
            head=_STARCODER2_HEAD,
            bos="<|endoftext|>",
            eos="<|endoftext|>",
            add_bos=False,
            basename="starcoder2",
            size_label="3B",
        ),
        Family(
            "starcoder",
            "StarCoderBase 1B",
            "starcoder",
            "gpt2",
            "starcoder",
            head=_STARCODER_HEAD,
            bos="<|endoftext|>",
            eos="<|endoftext|>",
            add_bos=False,
            basename="starcoderbase",
        ),
        Family(
            "codellama",
            "CodeLlama 7B",
            "llama",
            "llama",
            head=_SPM_HEAD,
            tail=_CODELLAMA_TAIL,
            bos="<s>",
            eos="</s>",
            eot="▁<EOT>",
            add_bos=True,
            add_space_prefix=True,
            basename="CodeLlama",
            size_label="7B",
        ),
        Family(
            "deepseek-coder",
            "deepseek-coder-1.3b-base",
            "llama",
            "gpt2",
            "deepseek-coder",
            tail=_DEEPSEEK_TAIL,
            bos="<｜begin▁of▁sentence｜>",
            eos="<｜end▁of▁sentence｜>",
            add_bos=True,
            basename="deepseek-coder",
            size_label="1.3B",
        ),
        Family(
            "deepseek-coder-instruct",
            "deepseek-coder-1.3b-instruct",
            "llama",
            "gpt2",
            "deepseek-coder",
            tail=_DEEPSEEK_TAIL,
            bos="<｜begin▁of▁sentence｜>",
            eos="<|EOT|>",
            add_bos=True,
            chat_template=DEEPSEEK_INSTRUCT_TEMPLATE,
            finetune="instruct",
            basename="deepseek-coder",
            size_label="1.3B",
        ),
        Family(
            "codegemma",
            "codegemma-2b",
            "gemma",
            "llama",
            head=_GEMMA_HEAD,
            bos="<bos>",
            eos="<eos>",
            add_bos=True,
            add_space_prefix=False,
            basename="codegemma",
            size_label="2B",
        ),
        Family(
            "codegemma-it",
            "codegemma-7b-it",
            "gemma",
            "llama",
            head=_GEMMA_HEAD,
            bos="<bos>",
            eos="<eos>",
            eot="<end_of_turn>",
            add_bos=True,
            add_space_prefix=False,
            chat_template=GEMMA_TEMPLATE,
            finetune="it",
            basename="codegemma",
            size_label="7B",
        ),
        Family(
            "mistral-7b-instruct",
            "Mistral 7B Instruct v0.2",
            "llama",
            "llama",
            head=_SPM_HEAD,
            bos="<s>",
            eos="</s>",
            add_bos=True,
            add_space_prefix=True,
            chat_template=MISTRAL_INSTRUCT_TEMPLATE,
            finetune="Instruct",
            basename="Mistral",
            size_label="7B",
        ),
        Family(
            "mixtral-8x7b-instruct",
            "Mixtral 8x7B Instruct v0.1",
            "llama",
            "llama",
            head=_SPM_HEAD,
            bos="<s>",
            eos="</s>",
            add_bos=True,
            add_space_prefix=True,
            chat_template=MISTRAL_INSTRUCT_TEMPLATE,
            finetune="Instruct",
            basename="Mixtral",
            size_label="8x7B",
            extra={"llama.expert_count": "8"},
        ),
    )
}


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character map (byte-level BPE alphabet)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def _bpe_vocab() -> tuple[list[str], list[str]]:
    """Byte alphabet plus left-to-right merges building each of `_WORDS` (and "Ġword")."""
    table = _byte_to_unicode()
    tokens = [table[b] for b in range(256)]
    known = set(tokens)
    merges: list[str] = []
    for word in _WORDS:
        for form in {word, " " + word} if word.strip() else {word}:
            pieces = [table[b] for b in form.encode()]
            current = pieces[0]
            for piece in pieces[1:]:
                merged = current + piece
                if merged not in known:
                    merges.append(f"{current} {piece}")
                    tokens.append(merged)
                    known.add(merged)
                current = merged
    return tokens, merges


def _spm_vocab() -> tuple[list[str], list[float], list[int]]:
    """Byte-fallback pieces plus every prefix of each word ("▁word" too), scored by length."""
    tokens = [f"<0x{b:02X}>" for b in range(256)]
    scores = [0.0] * 256
    types = [int(BYTE)] * 256
    known = set(tokens)
    for word in _WORDS:
        for form in (word.replace(" ", "▁"), "▁" + word.replace(" ", "▁")):
            if "\n" in form:
                continue
            for end in range(1, len(form) + 1):
                piece = form[:end]
                if piece not in known:
                    known.add(piece)
                    tokens.append(piece)
                    scores.append(-1000.0 + len(piece))  # longer pieces win
                    types.append(int(NORMAL))
    for ch in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_()[]{}:.,=+-*/\"'#<>":
        if ch not in known:
            known.add(ch)
            tokens.append(ch)
            scores.append(-2000.0)
            types.append(int(NORMAL))
    return tokens, scores, types


def write_family(family: Family | str, directory: Path) -> Path:
    """Write `family`'s vocabulary-only GGUF into `directory`; returns its path."""
    if isinstance(family, str):
        family = FAMILIES[family]
    path = directory / f"{family.key}.gguf"
    writer = gguf.GGUFWriter(str(path), family.architecture)
    writer.add_name(family.name)
    writer.add_type("model")
    if family.basename:
        writer.add_basename(family.basename)
    if family.finetune:
        writer.add_finetune(family.finetune)
    if family.size_label:
        writer.add_size_label(family.size_label)
    # Hyperparameters llama.cpp reads even for a vocabulary-only load.
    writer.add_context_length(4096)
    writer.add_embedding_length(64)
    writer.add_block_count(1)
    writer.add_feed_forward_length(128)
    writer.add_head_count(4)
    writer.add_head_count_kv(4)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_layer_norm_eps(1e-5)
    for key, value in family.extra.items():
        if value.isdigit():
            writer.add_uint32(key, int(value))
        else:
            writer.add_string(key, value)

    head = [text for text, _ in family.head]
    head_types = [int(t) for _, t in family.head]
    tail = [text for text, _ in family.tail]
    tail_types = [int(t) for _, t in family.tail]
    if family.tokenizer == "gpt2":
        body, merges = _bpe_vocab()
        tokens = head + body + tail
        types = head_types + [int(NORMAL)] * len(body) + tail_types
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(family.pre or "default")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_merges(merges)
    else:
        body, body_scores, body_types = _spm_vocab()
        tokens = head + body + tail
        types = head_types + body_types + tail_types
        scores = [0.0] * len(head) + body_scores + [0.0] * len(tail)
        writer.add_tokenizer_model("llama")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        if family.add_space_prefix is not None:
            writer.add_add_space_prefix(family.add_space_prefix)
    index = {text: i for i, text in enumerate(tokens)}
    if family.bos:
        writer.add_bos_token_id(index[family.bos])
    if family.eos:
        writer.add_eos_token_id(index[family.eos])
    if family.eot:
        writer.add_eot_token_id(index[family.eot])
    if "<unk>" in index:
        writer.add_unk_token_id(index["<unk>"])
    if family.add_bos is not None:
        writer.add_add_bos_token(family.add_bos)
    if family.chat_template:
        writer.add_chat_template(family.chat_template)
    if family.fim_ids:
        pre, suf, mid = family.fim_ids
        writer.add_uint32(gguf.Keys.Tokenizer.FIM_PRE_ID, index[pre])
        writer.add_uint32(gguf.Keys.Tokenizer.FIM_SUF_ID, index[suf])
        writer.add_uint32(gguf.Keys.Tokenizer.FIM_MID_ID, index[mid])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def vocabulary(path: Path) -> list[str]:
    """The token texts written into `path`, read back with the gguf package."""
    reader = gguf.GGUFReader(str(path))
    return list(reader.fields["tokenizer.ggml.tokens"].contents())


class _VocabLlama:
    """The slice of `llama_cpp.Llama` that LlamaEngine uses outside generation."""

    def __init__(self, path: Path) -> None:
        import llama_cpp
        from llama_cpp._internals import LlamaModel

        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        self._model = LlamaModel(path_model=str(path), params=params, verbose=False)
        self.metadata = self._model.metadata()

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return self._model.tokenize(text, add_bos, special)

    def detokenize(self, tokens: list[int], special: bool = False) -> bytes:
        return self._model.detokenize(tokens, special)

    def n_ctx(self) -> int:
        return 4096

    def n_ctx_train(self) -> int:
        return self._model.n_ctx_train()

    def token_eos(self) -> int:
        return self._model.token_eos()

    def close(self) -> None:
        self._model.close()


def load_vocab_engine(path: Path):
    """A real LlamaEngine over a vocabulary-only model (no weights: generate is unusable)."""
    from copilot_server.engines.llama import LlamaEngine

    engine = LlamaEngine.__new__(LlamaEngine)
    engine._llm = _VocabLlama(path)
    engine._lock = threading.Lock()
    engine._previous = []
    engine.info = engine._read_info(path, 0)
    return engine

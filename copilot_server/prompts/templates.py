"""Which prompt format a model understands, read from its GGUF vocabulary and metadata.

Each fill-in-the-middle family is a small record of its special tokens' texts, their
order and how its repo-level context is laid out. Detection asks the model's own
tokenizer which of those texts are single special tokens (a vocabulary lookup that needs
no access to the raw token list), and cross-checks with the FIM ids llama.cpp found
itself. A model with no FIM tokens gets a chat prompt built with its own chat template.

The format is named in the `model.template` setting ("auto" detects); `doctor` and the
server log say which one is in use and why.
"""

from __future__ import annotations

import logging
import re
import weakref
from dataclasses import dataclass, field

from ..engines.base import Engine
from ..engines.families import BY_NAME, FAMILIES, FimFamily, family_by_name
from ..engines.tokens import token_cache

log = logging.getLogger(__name__)


class PromptError(RuntimeError):
    """The model cannot be prompted for fill-in-the-middle the requested way."""


GENERIC = "fim"  # llama.cpp's own FIM ids, PSM layout: a model no family record knows
CHAT = "chat"
TEMPLATE_NAMES = ("auto", *(f.name for f in FAMILIES), GENERIC, CHAT)
# Text of BOS/EOS-like tokens a chat template may name, probed like the FIM tokens.
_BOS_TEXTS = ("<s>", "<bos>", "<|begin_of_text|>", "<｜begin▁of▁sentence｜>", "<|endoftext|>")
_CHAT_STOPS = (
    "<|im_end|>",
    "<end_of_turn>",
    "<|eot_id|>",
    "<|EOT|>",
    "</s>",
    "<eos>",
    "<|end|>",
    "<|endoftext|>",
    "<｜end▁of▁sentence｜>",
)


@dataclass(frozen=True)
class Template:
    """A format resolved against one model: token ids, layout, and how it was chosen."""

    name: str  # a TEMPLATE_NAMES value
    label: str
    kind: str  # "fim" | "chat"
    source: str  # why this one: "setting", "vocabulary", "llama.cpp FIM ids", "no FIM tokens"
    family: FimFamily | None = None
    prefix: int | None = None
    suffix: int | None = None
    middle: int | None = None
    repo_name: int | None = None
    file_sep: int | None = None
    bos: int | None = None
    stop_tokens: frozenset[int] = frozenset()
    # Tokenizing text adds a leading "▁" (SentencePiece with add_space_prefix).
    adds_space: bool = False
    warnings: tuple[str, ...] = ()
    texts: dict[str, str] = field(default_factory=dict)  # role -> token text, for humans

    @property
    def order(self) -> str:
        return self.family.order if self.family else "psm"

    def describe(self) -> str:
        if self.kind == CHAT:
            text = (
                f"{self.label}: the model's own chat template, asking for the missing code "
                f"only ({self.source})"
            )
        else:
            marks = [self.texts.get(role, "?") for role in _layout_roles(self)]
            text = f"{self.label} FIM, {' … '.join(marks)} ({self.source})"
            if self.repo_name is not None or self.file_sep is not None:
                extra = "/".join(
                    self.texts[role] for role in ("repo_name", "file_sep") if role in self.texts
                )
                text += f"; repo-level context with {extra}"
        for warning in self.warnings:
            text += f"; warning: {warning}"
        return text


def _layout_roles(template: Template) -> list[str]:
    roles = ["suffix", "prefix"] if template.order == "spm" else ["prefix", "suffix"]
    if template.family is None or template.family.use_middle:
        roles.append("middle")
    return roles


# -- vocabulary probes ------------------------------------------------------------------


def special_token(engine: Engine, text: str) -> int | None:
    """The id of `text` when the model's tokenizer has it as one special token."""
    try:
        tokens = engine.tokenize(text, special=True)
    except Exception:  # a remote engine without special-token parsing
        return None
    return tokens[0] if len(tokens) == 1 else None


def _first_token(engine: Engine, texts: tuple[str, ...]) -> tuple[int | None, str]:
    for text in texts:
        token = special_token(engine, text)
        if token is not None:
            return token, text
    return None, ""


def _meta_int(engine: Engine, key: str) -> int | None:
    value = engine.info.metadata.get(key)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def adds_leading_space(engine: Engine) -> bool:
    """SentencePiece tokenizers with add_space_prefix turn "\\n" into "▁", "\\n"."""
    return token_cache(engine)("\n") > 1


def bos_token(engine: Engine) -> int | None:
    """BOS when the model's tokenizer adds one (SentencePiece defaults to yes)."""
    meta = engine.info.metadata
    flag = meta.get("tokenizer.ggml.add_bos_token")
    if flag is not None:
        add = flag.lower() == "true"
    else:
        add = meta.get("tokenizer.ggml.model") == "llama"
    return _meta_int(engine, "tokenizer.ggml.bos_token_id") if add else None


# -- builds: base vs instruct -------------------------------------------------------------

_INSTRUCT = re.compile(r"(?i)(^|[\s_.-])(instruct|chat|it)($|[\s_.-])")


def is_instruct_build(engine: Engine) -> bool:
    meta = engine.info.metadata
    finetune = meta.get("general.finetune", "")
    if finetune and _INSTRUCT.search(finetune):
        return True
    return bool(_INSTRUCT.search(meta.get("general.name", engine.info.name)))


def base_build_name(engine: Engine, family: FimFamily) -> str:
    meta = engine.info.metadata
    basename = meta.get("general.basename") or family.label
    size = meta.get("general.size_label")
    return f"{basename}-{size}" if size else f"{basename} (base)"


def _build_warnings(engine: Engine, family: FimFamily | None) -> tuple[str, ...]:
    if family is None or not family.has_base_build or not is_instruct_build(engine):
        return ()
    return (
        f"{engine.info.name} is an instruct/chat build used for fill-in-the-middle; the base "
        f"build {base_build_name(engine, family)} is the one trained for it and usually "
        "completes better",
    )


# -- resolution -------------------------------------------------------------------------


def resolve_template(engine: Engine, setting: str = "auto") -> Template:
    """The format to prompt `engine` with; raises PromptError when there is none."""
    setting = (setting or "auto").strip().lower()
    if setting == "auto":
        return _auto(engine)
    if setting == CHAT:
        return _chat(engine, "setting")
    if setting == GENERIC:
        template = _generic(engine, "setting")
        if template is None:
            raise PromptError(f"{engine.info.name}: llama.cpp found no FIM tokens for 'fim'")
        return template
    family = BY_NAME.get(setting)
    if family is None:
        raise PromptError(
            f"unknown prompt template '{setting}'; choose one of: " + ", ".join(TEMPLATE_NAMES)
        )
    template = _family(engine, family, "setting")
    if template is None:
        missing = ", ".join(t for t in (family.prefix[0], family.suffix[0], family.middle[0]))
        raise PromptError(
            f"template '{family.name}' needs the special tokens {missing}, which "
            f"{engine.info.name}'s vocabulary lacks; use template 'auto'"
        )
    return template


def _auto(engine: Engine) -> Template:
    fim = engine.info.fim
    for family in FAMILIES:
        if any(special_token(engine, text) is None for text in family.requires):
            continue
        template = _family(engine, family, "detected from the vocabulary")
        if template is not None:
            if fim.available and fim.prefix != template.prefix:
                # llama.cpp disagrees: trust the tokens it marked as FIM.
                continue
            if fim.available:
                template = _with_source(template, "detected from the vocabulary; llama.cpp agrees")
            return template
    generic = _generic(engine, "llama.cpp's FIM token ids")
    if generic is not None:
        return generic
    if engine.info.chat_template:
        return _chat(engine, "the model has no FIM tokens")
    raise PromptError(
        f"{engine.info.name} has no fill-in-the-middle tokens and no chat template; choose a "
        "code model with FIM (Qwen2.5-Coder, StarCoder2, CodeLlama, Codestral, DeepSeek-Coder, "
        "CodeGemma) or an instruct model with a chat template."
    )


def _with_source(template: Template, source: str) -> Template:
    return Template(**{**template.__dict__, "source": source})


def _family(engine: Engine, family: FimFamily, source: str) -> Template | None:
    prefix, prefix_text = _first_token(engine, family.prefix)
    suffix, suffix_text = _first_token(engine, family.suffix)
    middle, middle_text = _first_token(engine, family.middle)
    if prefix is None or suffix is None or (family.use_middle and middle is None):
        return None
    repo_name, repo_text = _first_token(engine, family.repo_name)
    file_sep, sep_text = _first_token(engine, family.file_sep)
    texts = {"prefix": prefix_text, "suffix": suffix_text, "middle": middle_text}
    if repo_name is not None:
        texts["repo_name"] = repo_text
    if file_sep is not None:
        texts["file_sep"] = sep_text
    stops = {t for t in (special_token(engine, s) for s in family.stops) if t is not None}
    stops |= {t for t in (prefix, suffix, middle, repo_name, file_sep) if t is not None}
    if engine.info.eos_token is not None:
        stops.add(engine.info.eos_token)
    return Template(
        name=family.name,
        label=family.label,
        kind="fim",
        source=source,
        family=family,
        prefix=prefix,
        suffix=suffix,
        middle=middle if family.use_middle else None,
        repo_name=repo_name,
        file_sep=file_sep,
        bos=bos_token(engine),
        stop_tokens=frozenset(stops),
        adds_space=family.spm_spaces and adds_leading_space(engine),
        warnings=_build_warnings(engine, family),
        texts=texts,
    )


def _generic(engine: Engine, source: str) -> Template | None:
    fim = engine.info.fim
    if not fim.available:
        return None
    family = family_by_name(engine)
    ids = (fim.prefix, fim.suffix, fim.middle, fim.repo_name, fim.file_sep)
    stops = {t for t in ids if t is not None}
    if engine.info.eos_token is not None:
        stops.add(engine.info.eos_token)
    return Template(
        name=GENERIC,
        label=f"generic ({family.label})" if family else "generic",
        kind="fim",
        source=source,
        prefix=fim.prefix,
        suffix=fim.suffix,
        middle=fim.middle,
        repo_name=fim.repo_name if fim.file_sep is not None else None,
        file_sep=fim.file_sep,
        bos=bos_token(engine),
        stop_tokens=frozenset(stops),
        warnings=_build_warnings(engine, family),
        texts={"prefix": f"#{fim.prefix}", "suffix": f"#{fim.suffix}", "middle": f"#{fim.middle}"},
    )


def _chat(engine: Engine, source: str) -> Template:
    stops = {t for t in (special_token(engine, s) for s in _CHAT_STOPS) if t is not None}
    if engine.info.eos_token is not None:
        stops.add(engine.info.eos_token)
    template = engine.info.chat_template
    label = "chat" if template else "chat (ChatML fallback: the model has no chat template)"
    # The template names BOS/EOS by text ("{{ bos_token }}"): find the texts of the ids.
    texts = {}
    for role, token in (
        ("bos", _meta_int(engine, "tokenizer.ggml.bos_token_id")),
        ("eos", engine.info.eos_token),
    ):
        candidates = (*_BOS_TEXTS, *_CHAT_STOPS)
        text = next((s for s in candidates if special_token(engine, s) == token), "")
        if token is not None and text:
            texts[role] = text
    return Template(
        name=CHAT,
        label=label,
        kind=CHAT,
        source=source,
        bos=bos_token(engine),
        stop_tokens=frozenset(stops),
        warnings=_chat_warnings(engine),
        texts=texts,
    )


def _chat_warnings(engine: Engine) -> tuple[str, ...]:
    if engine.info.fim.available:
        return ("the model has FIM tokens; a FIM template completes faster and better than chat",)
    return ()


def describe_template(engine: Engine, setting: str = "auto") -> str:
    """One line for `doctor` and the log: the format in use, why, and any warning."""
    try:
        return resolve_template(engine, setting).describe()
    except PromptError as exc:
        return f"none: {exc}"


# -- template choice, once per engine and setting ----------------------------------------

# engine -> (the ModelInfo its templates were resolved for, {setting: template}). A remote
# engine's server may come to serve another model: its engine then has a new `info`.
_resolved: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def template_for(engine: Engine, setting: str = "auto") -> Template:
    """The engine's template for `setting`, resolved once per model it serves and logged
    when first chosen."""
    info = engine.info
    try:
        entry = _resolved.get(engine)
        if entry is None or entry[0] is not info:
            entry = _resolved[engine] = (info, {})
        cache = entry[1]
    except TypeError:  # an engine that cannot be weakly referenced: resolve every time
        cache = {}
    template = cache.get(setting)
    if template is None:
        template = resolve_template(engine, setting)
        cache[setting] = template
        log.info("prompt template for %s: %s", engine.info.name, template.describe())
        for warning in template.warnings:
            log.warning("%s", warning)
    return template

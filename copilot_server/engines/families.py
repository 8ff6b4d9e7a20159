"""Each model family's FIM special tokens, and finding a family by name."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Engine


def family_texts(family: FimFamily) -> tuple[str, ...]:
    return (
        *family.prefix,
        *family.suffix,
        *family.middle,
        *family.repo_name,
        *family.file_sep,
        *family.stops,
    )


def family_for_name(name: str) -> FimFamily | None:
    """The FIM family a template setting or a served model's name points to."""
    lowered = name.strip().lower()
    if not lowered:
        return None
    for family in FAMILIES:
        if lowered == family.name or lowered in family.aliases:
            return family
    for family in FAMILIES:
        if any(word in lowered for word in (*family.names, family.name)):
            return family
    return None


@dataclass(frozen=True)
class FimFamily:
    """One model family's fill-in-the-middle format, as its model card documents it."""

    name: str  # the `model.template` setting value
    label: str
    # Candidate texts of each special token (the first that is one token wins).
    prefix: tuple[str, ...]
    suffix: tuple[str, ...]
    middle: tuple[str, ...]
    # "psm": prefix, suffix, middle. "spm": suffix first, then prefix (Mistral/Codestral).
    order: str = "psm"
    # Mistral's FIM has no middle token: the model continues right after the prefix.
    use_middle: bool = True
    repo_name: tuple[str, ...] = ()
    file_sep: tuple[str, ...] = ()
    # How repo-level snippets are written: "qwen", "starcoder2", "codegemma" or "".
    repo_style: str = ""
    # Texts that end a suggestion besides EOS (end of file, another FIM marker…).
    stops: tuple[str, ...] = ()
    # Texts that must be tokens for "auto" to pick this family over a look-alike.
    requires: tuple[str, ...] = ()
    # SentencePiece families encode the prefix with the tokenizer's leading space
    # ("<PRE> {prefix}") and the suffix and middle without it, as their reference code.
    spm_spaces: bool = False
    # The family has base builds trained for FIM next to its instruct/chat builds.
    has_base_build: bool = True
    aliases: tuple[str, ...] = ()
    # Words in general.name / general.basename that identify the family by name, for a
    # vocabulary whose FIM tokens are not marked special.
    names: tuple[str, ...] = ()


FAMILIES: tuple[FimFamily, ...] = (
    # CodeGemma shares Qwen's <|fim_*|> texts; its <|file_separator|> tells them apart.
    FimFamily(
        "codegemma",
        "CodeGemma",
        ("<|fim_prefix|>",),
        ("<|fim_suffix|>",),
        ("<|fim_middle|>",),
        file_sep=("<|file_separator|>",),
        repo_style="codegemma",
        stops=(
            "<|file_separator|>",
            "<eos>",
            "<end_of_turn>",
            "<|fim_prefix|>",
            "<|fim_suffix|>",
            "<|fim_middle|>",
        ),
        requires=("<|file_separator|>",),
        names=("codegemma",),
    ),
    FimFamily(
        "qwen2.5-coder",
        "Qwen2.5-Coder",
        ("<|fim_prefix|>",),
        ("<|fim_suffix|>",),
        ("<|fim_middle|>",),
        repo_name=("<|repo_name|>",),
        file_sep=("<|file_sep|>",),
        repo_style="qwen",
        stops=(
            "<|endoftext|>",
            "<|fim_pad|>",
            "<|file_sep|>",
            "<|repo_name|>",
            "<|im_end|>",
            "<|fim_prefix|>",
            "<|fim_suffix|>",
            "<|fim_middle|>",
        ),
        aliases=("qwen", "qwen2.5", "qwen-coder"),
        names=("qwen",),
    ),
    FimFamily(
        "starcoder2",
        "StarCoder2",
        ("<fim_prefix>",),
        ("<fim_suffix>",),
        ("<fim_middle>",),
        repo_name=("<repo_name>",),
        file_sep=("<file_sep>",),
        repo_style="starcoder2",
        stops=(
            "<|endoftext|>",
            "<file_sep>",
            "<fim_pad>",
            "<fim_prefix>",
            "<fim_suffix>",
            "<fim_middle>",
        ),
        requires=("<file_sep>",),
        names=("starcoder2",),
    ),
    FimFamily(
        "starcoder",
        "StarCoder",
        ("<fim_prefix>", "<fim-prefix>"),
        ("<fim_suffix>", "<fim-suffix>"),
        ("<fim_middle>", "<fim-middle>"),
        stops=(
            "<|endoftext|>",
            "<fim_pad>",
            "<fim-pad>",
            "<fim_prefix>",
            "<fim_suffix>",
            "<fim_middle>",
        ),
        aliases=("santacoder",),
        names=("starcoder", "santacoder"),
    ),
    FimFamily(
        "deepseek-coder",
        "DeepSeek-Coder",
        ("<｜fim▁begin｜>",),
        ("<｜fim▁hole｜>",),
        ("<｜fim▁end｜>",),
        stops=(
            "<|EOT|>",
            "<｜end▁of▁sentence｜>",
            "<｜fim▁begin｜>",
            "<｜fim▁hole｜>",
            "<｜fim▁end｜>",
        ),
        aliases=("deepseek",),
        names=("deepseek",),
    ),
    FimFamily(
        "codellama",
        "CodeLlama",
        ("▁<PRE>", "<PRE>"),
        ("▁<SUF>", "<SUF>"),
        ("▁<MID>", "<MID>"),
        stops=("▁<EOT>", "<EOT>"),
        spm_spaces=True,
        names=("codellama", "code llama"),
    ),
    FimFamily(
        "codestral",
        "Codestral (Mistral FIM)",
        ("[PREFIX]",),
        ("[SUFFIX]",),
        ("[MIDDLE]",),
        order="spm",
        use_middle=False,
        stops=("[PREFIX]", "[SUFFIX]", "[MIDDLE]"),
        spm_spaces=True,
        has_base_build=False,
        aliases=("mistral", "mistral-fim"),
        names=("codestral",),
    ),
)
BY_NAME = {alias: f for f in FAMILIES for alias in (f.name, *f.aliases)}


def family_by_name(engine: Engine) -> FimFamily | None:
    meta = engine.info.metadata
    words = f"{meta.get('general.basename', '')} {engine.info.name}".lower()
    for family in FAMILIES:
        if any(name in words for name in family.names):
            return family
    return None

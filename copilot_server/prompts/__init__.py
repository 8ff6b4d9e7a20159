"""Prompts for each model family, built as token lists from the model's own special tokens.

Layout (as llama.cpp's /infill): stable material first — other files' snippets, the
lines before the cursor's line, the suffix — and the typed part of the cursor's line
last, after the middle token. Typing within a line then only appends tokens, so the KV
cache keeps the rest of the prompt. Suffix-first families (Codestral) put the suffix
first and the prefix last, which keeps the same property.

Models without FIM tokens get a chat prompt rendered with their own chat template: the
task and the code after the cursor in the user turn, and the assistant's answer already
opened with a code fence, the code before the cursor and the line's typed text, so the
model's first token continues the code. Its output goes through the same trimmer (plus
fence/prose rules).

In every layout the typed text ends the prompt, so every layout is token-healed the same
way (healing.py): its trailing partial token(s) are taken back and the engine constrains
the first tokens to write them again. An engine that says it cannot constrain (remote)
gets the plain FIM layout instead when the cursor is inside a word: the typed line ends
the prefix section, where FIM training cut words at arbitrary characters.
"""

from .fim import build_fim_prompt
from .healing import Healing
from .prompt import Prompt, PromptPart
from .templates import TEMPLATE_NAMES, PromptError, describe_template, template_for

__all__ = [
    "Healing",
    "Prompt",
    "PromptError",
    "PromptPart",
    "TEMPLATE_NAMES",
    "build_fim_prompt",
    "describe_template",
    "template_for",
]

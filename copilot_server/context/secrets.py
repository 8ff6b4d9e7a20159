"""Lines that look like secrets, kept out of prompts.

Files named like secrets (.env, *.pem, credentials, ...) are never read (index.py), but
keys also sit in ordinarily named files: a settings.py with `SECRET_KEY = "..."`, a test
fixture with a private key, a script with a token. Before text from *other* files goes
into a prompt (definitions, similar snippets), `without_secrets` drops:

- a private-key block, from its `-----BEGIN ... PRIVATE KEY-----` line to its END line;
- lines holding a token of a known shape (AWS key ids, GitHub/GitLab/Slack/Stripe/OpenAI
  keys, Google API keys, JWTs, `Bearer ...`, URLs with a password);
- assignments to secret-like names: a password/secret name with any literal value, a
  key/token/credential name with a random-looking value (`MAX_TOKENS = 64`, `sort_key =
  "name"` and `api_key = os.environ["API_KEY"]` stay).

A dropped line costs a little context; a key in a prompt may leave the machine (remote
engines) or come back as a suggestion. So doubtful lines go. The table of cases is in
tests/test_security.py.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from pathlib import PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Settings

_PRIVATE_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")
_PRIVATE_KEY_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")

# Tokens whose shape alone says what they are (prefixes documented by their issuers).
_KNOWN_TOKENS = re.compile(
    r"""
      \b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b      # AWS access key id
    | \bgh[pousr]_[A-Za-z0-9]{30,}                      # GitHub tokens
    | \bgithub_pat_[A-Za-z0-9_]{22,}
    | \bglpat-[A-Za-z0-9_-]{20,}                        # GitLab
    | \bxox[abposr]-[A-Za-z0-9-]{10,}                   # Slack
    | \b[rsp]k_(?:live|test)_[A-Za-z0-9]{16,}           # Stripe
    | \bsk-(?:proj-|ant-|live-)?[A-Za-z0-9_-]{20,}      # OpenAI, Anthropic, ...
    | \bAIza[0-9A-Za-z_-]{35}                           # Google API key
    | \beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}   # JWT
    | \bBearer\s+[A-Za-z0-9._~+/-]{16,}=*               # an Authorization header value
    | \b[a-z][a-z0-9+.-]*://[^/\s:@'"]+:[^/\s@'"]+@      # user:password@host in a URL
    """,
    re.VERBOSE,
)

# Name words that make any literal value a secret, and those that need a random-looking one.
_PASSWORD_WORDS = frozenset({"password", "passwd", "pwd", "passphrase", "secret", "secrets"})
_KEY_WORDS = frozenset(
    {"key", "token", "apikey", "credential", "credentials", "auth", "authorization", "cookie"}
)
# The same words run together (`clientsecret`, `APIKEY`, `dbpassword`).
_JOINED_PASSWORD = re.compile(r"password|passwd|passphrase|clientsecret|secretkey|secretaccess")
_JOINED_KEY = re.compile(r"apikey|accesskey|privatekey|authtoken|accesstoken|refreshtoken")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_SEPARATORS = re.compile(r"[_\-.$]+")
_STEMS = re.compile(r"pass|pwd|secret|key|token|auth|credential|cookie", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z_$][\w$-]*")
# After a name: a closing quote or bracket (JSON keys, dict subscripts), an optional type
# annotation (`password: str = ...`), then an assignment operator (not `==`).
_ASSIGNMENT = re.compile(
    r"""["'`\]]{0,2}\s*(?::\s*[\w\[\]<>|&,. ]+?\s*(?==(?!=)))?(?P<op>:=|=>|\?=|=(?!=)|:(?!:))\s*"""
)
_QUOTED = re.compile(r"""(?:[rbfuRBFU]{1,2})?(?P<q>["'`])(?P<body>.*?)(?:(?P=q)|$)""")
_BARE = re.compile(r"""[^\s,;#)}\]'"`]+""")
_CODE = re.compile(r"[A-Za-z_$][\w$]*\s*[(.\[]")  # a call, attribute or subscript: not a value
_NUMBER = re.compile(r"[+-]?(?:0[xob][0-9a-fA-F_]+|\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?)")
_NON_VALUES = frozenset(
    {"none", "null", "nil", "undefined", "true", "false", "yes", "no", "on", "off"}
)
_PLACEHOLDER = re.compile(r"^(?:\$\{?|\{\{|%\(|<|\[\[|\*+$|x+$|\.+$|changeme$|todo$)", re.I)
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9+/=_\-.~:]+")
# A random key of 16+ characters carries > 3 bits per character (hex: ~3.7); words and
# identifiers mixing in digits rarely do.
MIN_TOKEN_CHARS = 16
MIN_TOKEN_ENTROPY = 3.0


def shannon_entropy(text: str) -> float:
    """Bits per character of `text` (0 for an empty string)."""
    if not text:
        return 0.0
    counts = Counter(text)
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def looks_random(value: str) -> bool:
    """A value shaped like a generated key: long, no spaces, letters and digits, varied."""
    if len(value) < MIN_TOKEN_CHARS or not _TOKEN_CHARS.fullmatch(value):
        return False
    if not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        return False
    return shannon_entropy(value) >= MIN_TOKEN_ENTROPY


@functools.lru_cache(maxsize=4096)
def _name_kind(name: str) -> str | None:
    """ "password" when any value of `name` is a secret, "key" when a random-looking one
    is, None when the name says nothing."""
    spaced = _CAMEL.sub(r"\1_\2", name)
    words = {w for w in _SEPARATORS.split(spaced.lower()) if w}
    joined = "".join(words)
    if words & _PASSWORD_WORDS or _JOINED_PASSWORD.search(joined):
        return "password"
    if words & _KEY_WORDS or _JOINED_KEY.search(joined):
        return "key"
    return None


def _value(rest: str) -> tuple[str, bool] | None:
    """The literal at the start of `rest` and whether it was quoted; None for code."""
    if not rest or rest[0] in "[{(":
        return None
    quoted = _QUOTED.match(rest)
    if quoted:
        return quoted.group("body"), True
    if _CODE.match(rest):
        return None
    bare = _BARE.match(rest)
    return (bare.group(), False) if bare else None


def _secret_value(kind: str, value: str, quoted: bool, op: str) -> bool:
    if not value or _PLACEHOLDER.match(value) or value.lower() in _NON_VALUES:
        return False
    if _NUMBER.fullmatch(value):
        return False
    if kind == "key":
        return looks_random(value)
    if any(c.isspace() for c in value):
        return False  # a sentence (help text, a label), not a password
    if not quoted and op == ":" and value.isidentifier():
        return False  # `password: str`, a type annotation
    return True


def looks_like_secret(line: str) -> bool:
    """Whether `line` holds something that looks like a key, token or password."""
    return _private_key_begins(line) or _has_secret(line, True)


def _private_key_begins(line: str) -> bool:
    return "PRIVATE KEY" in line and _PRIVATE_KEY_BEGIN.search(line) is not None


def _has_secret(line: str, maybe_token: bool) -> bool:
    """A known token (when `maybe_token`: the text it came from had one somewhere) or an
    assignment of a secret-looking value to a secret-like name."""
    if maybe_token and _KNOWN_TOKENS.search(line):
        return True
    if not ("=" in line or ":" in line) or not _STEMS.search(line):
        return False  # most lines: no assignment, or no secret-like name
    for match in _NAME.finditer(line):
        if not _STEMS.search(match.group()):
            continue
        kind = _name_kind(match.group())
        if kind is None:
            continue
        assignment = _ASSIGNMENT.match(line, match.end())
        if assignment is None:
            continue
        value = _value(line[assignment.end() :])
        if value is not None and _secret_value(kind, value[0], value[1], assignment["op"]):
            return True
    return False


def without_secrets(text: str) -> str:
    """`text` without the lines `looks_like_secret` flags and without private-key blocks
    (the same object when nothing is dropped). The patterns run once over the whole text
    first: most snippets hold no candidate at all (about 10x less time per line)."""
    keys = "PRIVATE KEY" in text
    tokens = _KNOWN_TOKENS.search(text) is not None
    if not (keys or tokens or _STEMS.search(text)):
        return text
    kept: list[str] = []
    in_key = False
    dropped = False
    for line in text.split("\n"):
        if in_key:
            dropped = True
            if _PRIVATE_KEY_END.search(line):
                in_key = False
            continue
        if keys and _private_key_begins(line):
            dropped = True
            in_key = not _PRIVATE_KEY_END.search(line)
            continue
        if _has_secret(line, tokens):
            dropped = True
            continue
        kept.append(line)
    return "\n".join(kept) if dropped else text


def is_secret_file(path: str) -> bool:
    """A file named like a secret (the index's SECRET_PATTERNS: .env, .env.*, *.pem, *.key,
    .npmrc, .netrc, credentials, ...) or inside a key folder (.ssh, .aws, .gnupg, .docker).
    Other folder names do not count here: a project under `~/work/secrets-rotation/` is
    still code to complete."""
    from .files import SECRET_PATTERNS, is_secret_name

    parts = PurePath(path).parts
    if not parts:
        return False
    if is_secret_name(parts[-1], False):
        return True
    folders = {pattern[:-1] for pattern in SECRET_PATTERNS if pattern.endswith("/")}
    return any(part.lower() in folders for part in parts[:-1])


def kept_from_model_server(path: str, settings: Settings) -> bool:
    """Whether completions in `path` are off because its text would go to a model server
    (engine.kind not local/shared) and it looks like a secret file, unless the user set
    `completion.allow_secret_files_remote`."""
    from ..config import LOCAL_MODEL_KINDS

    if settings.engine.kind in LOCAL_MODEL_KINDS or settings.completion.allow_secret_files_remote:
        return False
    return is_secret_file(path)

"""Keep secrets out of what canarist shows or sends: header values, tokens, passwords,
credentials in URLs.

Reports and notification payloads carry the experiment spec so a reader can see what was
measured and how. The spec may hold what a user put into headers, gRPC metadata, notify
settings or `run` scripts; anything that looks like a secret is replaced by `REDACTED`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

REDACTED = "[redacted]"

_SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token(?!s)|authori[sz]ation|auth(?!or)|api[-_]?key|apikey|"
    r"credential|private[-_]?key|cookie|session|signature|access[-_]?key|bearer|jwt|cert[-_]?data",
    re.IGNORECASE,
)
# Keys that name where a secret is found, not the secret itself (`tokenEnv: GITHUB_TOKEN`).
_REFERENCE_SUFFIX = re.compile(r"(env|file|path|scheme|url)$", re.IGNORECASE)
# Maps whose every value is sent to a server as is: HTTP headers, gRPC call metadata.
_ALL_VALUES_SECRET = frozenset({"headers", "metadata", "header"})
_HEADER_LINE = re.compile(
    r"(?P<head>\b(?:proxy-)?authorization\s*:\s*|\bx-api-key\s*:\s*|\bcookie\s*:\s*)"
    r"(?P<value>[^\"'\r\n]+)",
    re.IGNORECASE,
)
_SCHEME_CREDENTIAL = re.compile(r"\b(bearer|basic|token|digest)\s+[^\s\"']+", re.IGNORECASE)
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")
_ASSIGNMENT = re.compile(
    r"(?P<key>[A-Za-z0-9_.-]*(?:pass(?:word|wd)?|secret|token|api[-_]?key|apikey|credential)"
    r"[A-Za-z0-9_.-]*)(?P<sep>\s*[=:]\s*)(?P<value>[^\s\"'&]+)",
    re.IGNORECASE,
)


def is_secret_key(key: str) -> bool:
    """True for a mapping key whose value is likely a secret."""
    return bool(_SECRET_KEY.search(key)) and not _REFERENCE_SUFFIX.search(key)


def redact_text(text: str) -> str:
    """Remove credentials from free text: URL user info and secret query values,
    `Authorization: …`-style header lines, `Bearer …`/`Basic …` credentials, and
    `password=…`-style assignments."""
    text = _URL.sub(lambda m: _redact_url(m.group(0)), text)
    text = _HEADER_LINE.sub(lambda m: m.group("head") + REDACTED, text)
    text = _SCHEME_CREDENTIAL.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _ASSIGNMENT.sub(
        lambda m: m.group(0) if m.group("value") == REDACTED
        else f"{m.group('key')}{m.group('sep')}{REDACTED}", text)


def _redact_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_key(k) for k, _ in pairs):
            query = "&".join(f"{k}={REDACTED}" if is_secret_key(k) else _raw_pair(query, k)
                             for k, _ in pairs)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _raw_pair(query: str, key: str) -> str:
    """The pair as written in the query (kept byte for byte when not secret)."""
    for raw in query.split("&"):
        if raw.split("=", 1)[0] == key:
            return raw
    return key


def redact(value: Any, *, key: str | None = None, all_secret: bool = False) -> Any:
    """A copy of `value` (plain data) with secret-looking values replaced by `REDACTED`."""
    secret = all_secret or (key is not None and is_secret_key(key))
    if secret and value not in (None, "", {}, []):
        return REDACTED
    if isinstance(value, dict):
        children_secret = key is not None and key.lower() in _ALL_VALUES_SECRET
        return {k: redact(v, key=str(k), all_secret=children_secret) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(item, key=None, all_secret=all_secret) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value

"""Keep secrets out of what canarist shows or sends: header values, tokens, passwords,
credentials in URLs.

Reports and notification payloads carry the experiment spec so a reader can see what was
measured and how. The spec may hold what a user put into headers, gRPC metadata, notify
settings or `run` scripts; anything that looks like a secret is replaced by `REDACTED`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import SplitResult, unquote_plus, urlsplit, urlunsplit

REDACTED = "[redacted]"
SHOWN_LIMIT = 1000
"""Longest text a report shows of one value (a reason, a string in the spec); the rest is
counted: `… (N more characters)`. The experiment file keeps the whole text."""

_SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token(?!s)|authori[sz]ation|auth(?!or)|api[-_]?key|apikey|"
    r"credential|private[-_]?key|cookie|session|signature|access[-_]?key|bearer|jwt|cert[-_]?data",
    re.IGNORECASE,
)
# Keys that name where a secret is found, not the secret itself (`tokenEnv: GITHUB_TOKEN`).
_REFERENCE_SUFFIX = re.compile(r"(env|file|path|scheme|url)$", re.IGNORECASE)
# Maps whose every value is sent to a server as is: HTTP headers, gRPC call metadata.
_ALL_VALUES_SECRET = frozenset({"headers", "metadata", "header"})
# Every pattern below scans in linear time: each starts only where its first character can
# start (a lookbehind or a literal), and runs of characters are matched possessively, so a
# 100,000-character token costs one pass, not one pass per position.
_HEADER_LINE = re.compile(
    r"(?P<head>\b(?:proxy-)?authorization\s*+:\s*+|\bx-api-key\s*+:\s*+|\bcookie\s*+:\s*+)"
    r"(?P<value>[^\"'\r\n]++)",
    re.IGNORECASE,
)
_SCHEME_CREDENTIAL = re.compile(r"\b(bearer|basic|token|digest)\s++(?P<value>[^\s\"']++)",
                                re.IGNORECASE)
# What is already masked stays as it is (`***` is how a provider's own credentials show).
_MASKS = frozenset({REDACTED, "***"})
# A scheme starts at the first letter of a run of scheme characters (`1.http://` -> `http://`).
_URL = re.compile(
    r"(?<![a-zA-Z0-9+.-])[0-9+.-]*+(?P<url>[a-zA-Z][a-zA-Z0-9+.-]*+://[^\s\"'<>]++)")
# `password=…`, `api_key: …`: a whole word (letters, digits, `_.-`) naming a secret, then the
# separator and the value. The word is matched once and searched for the secret's name.
_WORD = re.compile(r"(?<![A-Za-z0-9_.-])[A-Za-z0-9_.-]++")
_ASSIGNED = re.compile(r"(?P<sep>\s*+[=:]\s*+)(?P<value>[^\s\"'&]++)")
_ASSIGNMENT_KEY = re.compile(r"pass(?:word|wd)?|secret|token|api[-_]?key|apikey|credential",
                             re.IGNORECASE)
# Webhook URLs whose path is the credential: shown as scheme and host only.
_WEBHOOK_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})
_WEBHOOK_PATH = re.compile(r"/api/webhooks/|/webhookb2/", re.IGNORECASE)
_USER_INFO = re.compile(r"^([^:/]*+://)[^/?#]*@")
ELIDED_PATH = "/\N{HORIZONTAL ELLIPSIS}"


def is_secret_key(key: str) -> bool:
    """True for a mapping key whose value is likely a secret."""
    return bool(_SECRET_KEY.search(key)) and not _REFERENCE_SUFFIX.search(key)


def redact_text(text: str) -> str:
    """Remove credentials from free text: URL user info and secret query values (webhook URLs
    lose their path), `Authorization: …`-style header lines, `Bearer …`/`Basic …` credentials,
    and `password=…`-style assignments. Linear in the length of `text`."""
    text = _URL.sub(_redact_url_match, text)
    text = _HEADER_LINE.sub(lambda m: m.group("head") + REDACTED, text)
    text = _SCHEME_CREDENTIAL.sub(
        lambda m: m.group(0) if m.group("value") in _MASKS else f"{m.group(1)} {REDACTED}", text)
    return _redact_assignments(text)


def _redact_url_match(match: re.Match[str]) -> str:
    start = match.start("url") - match.start()
    return match.group(0)[:start] + redacted_url(match.group("url"))


def _redact_assignments(text: str) -> str:
    out: list[str] = []
    done = 0
    position = 0
    while True:
        word = _WORD.search(text, position)
        if word is None:
            break
        position = word.end()
        if not _ASSIGNMENT_KEY.search(word.group(0)):
            continue
        assigned = _ASSIGNED.match(text, position)
        if assigned is None:
            continue
        position = assigned.end()
        if assigned.group("value") in _MASKS:
            continue
        out.append(text[done:assigned.start("value")])
        out.append(REDACTED)
        done = position
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def redacted_url(url: str) -> str:
    """`url` without user info and secret-looking query values; a webhook URL (Slack's
    `hooks.slack.com/services/…`, Discord's, Teams') shows only its scheme and host."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # `http://u:p@[::1/`: not a URL urllib can split, user info still hidden
        return _USER_INFO.sub(rf"\g<1>{REDACTED}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    if parts.path not in ("", "/") and (
            host.lower() in _WEBHOOK_HOSTS or _WEBHOOK_PATH.search(parts.path)):
        return f"{parts.scheme}://{netloc}{ELIDED_PATH}"
    query = parts.query
    if query:
        query = _redact_query(query)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_query(query: str) -> str:
    """The query with secret-looking values replaced; other pairs kept byte for byte."""
    pairs = query.split("&")
    changed = False
    for index, raw in enumerate(pairs):
        key = unquote_plus(raw.split("=", 1)[0])
        if key and is_secret_key(key):
            pairs[index] = f"{raw.split('=', 1)[0]}={REDACTED}"
            changed = True
    return "&".join(pairs) if changed else query


def shorten(text: str, limit: int = SHOWN_LIMIT) -> str:
    """`text` cut to `limit` characters, with how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\N{HORIZONTAL ELLIPSIS} ({len(text) - limit} more characters)"


def shown_text(text: str, limit: int = SHOWN_LIMIT) -> str:
    """Free text as a report shows it: redacted (`redact_text`), then shortened."""
    return shorten(redact_text(text), limit)


def shorten_strings(value: Any, limit: int = SHOWN_LIMIT) -> Any:
    """A copy of `value` (plain data) with every string longer than `limit` shortened."""
    if isinstance(value, str):
        return shorten(value, limit)
    if isinstance(value, dict):
        return {k: shorten_strings(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [shorten_strings(item, limit) for item in value]
    return value


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


def _located(url: str) -> tuple[SplitResult, str] | None:
    """`url` split, and its `host[:port]` as shown (lower case, IPv6 in brackets, no user
    info); None when it is not a URL urllib can split."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return None
    if ":" in host:
        host = f"[{host}]"
    return parts, host if port is None else f"{host}:{port}"


def origin_url(url: str) -> str:
    """`scheme://host[:port]/…`: enough to tell where a request went, nothing secret (the
    path of a webhook URL is its credential)."""
    located = _located(url)
    if located is None or not located[0].scheme or not located[0].hostname:
        return REDACTED
    parts, netloc = located
    return f"{parts.scheme}://{netloc}" + (
        ELIDED_PATH if parts.path not in ("", "/") or parts.query else "")


def path_url(url: str) -> str:
    """`scheme://host[:port]/path`: the URL without user info, query string and fragment
    (they may hold credentials), for a server whose paths are not secret (a metrics
    provider, a template's host)."""
    located = _located(url)
    if located is None:
        return "<invalid URL>"
    parts, netloc = located
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# -- the experiment's spec, as reports and notifications show it -----------------------------

_NOTIFY_PLAIN_KEYS = frozenset(
    {"method", "softfailure", "payloadtemplate", "payloadtemplatefile", "timeout", "tokenscheme"}
)
_NOTIFY_URL_KEYS = frozenset({"url", "payloadtemplateurl"})


_NOTIFY_REFERENCE_KEYS = frozenset({"tokenenv", "tokenfile"})


def _redact_notify_with(with_: dict[str, Any], references: bool) -> dict[str, Any]:
    redacted: dict[str, Any] = {}
    for key, value in with_.items():
        lowered = str(key).lower()
        if value is None or lowered in _NOTIFY_PLAIN_KEYS or (
                references and lowered in _NOTIFY_REFERENCE_KEYS):
            redacted[key] = redact(value)
        elif lowered in _NOTIFY_URL_KEYS and isinstance(value, str):
            redacted[key] = origin_url(value)
        elif lowered in ("headers", "params") and isinstance(value, dict):
            redacted[key] = {name: REDACTED for name in value}
        else:
            redacted[key] = REDACTED
    return redacted


def redact_spec(spec: list[Any], *, references: bool = False) -> list[Any]:
    """The experiment's `spec` (plain data) with every secret hidden: `redact` on every entry,
    and the `with` of notify tasks reduced to what is not secret (URLs show their origin,
    headers and parameters their names, token sources nothing unless `references`: the
    name of the variable or file holding the token)."""
    entries: list[Any] = []
    for entry in spec:
        entry = redact(entry)
        with_ = entry.get("with") if isinstance(entry, dict) else None
        if str(entry.get("task", "")).lower() == "notify" and isinstance(with_, dict):
            entry["with"] = _redact_notify_with(with_, references)
        entries.append(entry)
    return entries

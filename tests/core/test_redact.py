"""Redaction: what it hides, what it keeps byte for byte, and that it runs in linear time."""

from __future__ import annotations

import base64
import random
import time

import pytest

from canarist.core.redact import (
    REDACTED,
    SHOWN_LIMIT,
    origin_url,
    path_url,
    redact_spec,
    redact_text,
    shorten,
    shown_text,
)

# Inputs that made the earlier patterns retry at every position (quadratic or worse): long
# runs of key characters, scheme characters, separators, and repeated keywords.
HOSTILE = {
    "base64url payload": base64.urlsafe_b64encode(random.Random(7).randbytes(75_000)).decode(),
    "one long word": "x" * 100_000,
    "dotted word": "a." * 50_000,
    "dashed word": "a-" * 50_000,
    "digits and dots": "1." * 50_000,
    "keyword word": "secret_key.password-" * 5_000,
    "assignments": "password=password=" * 5_556,
    "schemes": "://" * 33_334,
    "bearer words": "token " * 16_667,
    "header lines": "authorization: " * 6_667,
    "query pairs": "http://h/?token=1&" + "a=1&" * 25_000,
    "spaces after a key": "password" + " " * 100_000 + ":",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_redaction_is_linear_on_hostile_input(name: str) -> None:
    text = HOSTILE[name]
    assert len(text) >= 100_000
    started = time.perf_counter()
    redact_text(text)
    elapsed = time.perf_counter() - started
    # Was 25 s for "one long word" at 10,000 characters (and never finished at 100,000).
    assert elapsed < 5, f"{name}: {elapsed:.1f}s"


def test_redaction_time_grows_linearly() -> None:
    def cost(n: int) -> float:
        text = ("ab.cd-" * n)[: 6 * n]
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            redact_text(text)
            best = min(best, time.perf_counter() - started)
        return best

    small, large = cost(20_000), cost(160_000)
    # 8 times the input: about 8 times the time (quadratic would be 64 times).
    assert large < 30 * small + 0.05, (small, large)


def test_what_is_hidden() -> None:
    assert redact_text("see http://u:p@h:1/x?password=p&a=b") == \
        f"see http://{REDACTED}@h:1/x?password={REDACTED}&a=b"
    assert redact_text("token: abc and Basic dXNlcjpw") == f"token: {REDACTED} and Basic {REDACTED}"
    assert redact_text("foo=password=x&api_key: k1 client.secret = s2") == \
        f"foo=password={REDACTED}&api_key: {REDACTED} client.secret = {REDACTED}"
    assert redact_text("x-api-key: k1\nAuthorization: Bearer zz\ncookie: a=b") == \
        f"x-api-key: {REDACTED}\nAuthorization: {REDACTED}\ncookie: {REDACTED}"
    # A scheme glued to what precedes it is still found.
    assert redact_text("(1.http://u:pw@h/x)") == f"(1.http://{REDACTED}@h/x)"
    assert redact_text("-https://u:pw@h/") == f"-https://{REDACTED}@h/"
    # Not a URL urllib can split, still no password.
    assert redact_text("see http://u:pw@[::1/x") == f"see http://{REDACTED}@[::1/x"


def test_webhook_urls_show_only_their_origin() -> None:
    assert redact_text("post to https://hooks.slack.com/services/T0/B0/XyZ now") == \
        "post to https://hooks.slack.com/… now"
    assert redact_text("https://discord.com/api/webhooks/1/abc") == "https://discord.com/…"
    assert redact_text("https://o.webhook.office.com/webhookb2/x/IncomingWebhook/y/z") == \
        "https://o.webhook.office.com/…"
    assert redact_text("https://hooks.slack.com/") == "https://hooks.slack.com/"


def test_what_is_kept_byte_for_byte() -> None:
    for text in ("http://h/x?a=%20b&c&&d=1;e=2#frag", "metric http/latency-p99 = 12.5",
                 "author: me, authority=h:1", "résumé ✅ \u4e2d\u6587", "a=b&c=d"):
        assert redact_text(text) == text
    assert redact_text("http://h/x?a=%20b&token=t&&c") == f"http://h/x?a=%20b&token={REDACTED}&&c"
    assert redact_text(f"password={REDACTED}") == f"password={REDACTED}"


def test_shortened_for_display() -> None:
    assert shorten("abc", 5) == "abc"
    assert shorten("abcdefgh", 5) == "abcde… (3 more characters)"
    long = "x" * 100_000
    assert shown_text(long) == "x" * SHOWN_LIMIT + f"… ({100_000 - SHOWN_LIMIT} more characters)"
    # Redacted before it is cut: a cut cannot leave half a credential unrecognised.
    text = "y" * (SHOWN_LIMIT - 20) + " http://user:longpassword@host/"
    assert "longpass" not in shown_text(text)


def test_spec_hides_notify_urls_headers_and_token_sources() -> None:
    spec = [
        {"task": "notify", "with": {"url": "https://hooks.slack.com/services/T/B/s3", "method": "POST",
                                    "headers": {"X-Api-Key": "k"}, "params": {"sig": "p"},
                                    "tokenEnv": "GH_TOKEN", "payloadTemplate": "slack"}},
        {"task": "http", "with": {"url": "http://u:pw@h/x?token=t"}},
    ]
    hidden = redact_spec(spec)
    assert hidden[0]["with"] == {"url": "https://hooks.slack.com/…", "method": "POST",
                                 "headers": {"X-Api-Key": REDACTED}, "params": {"sig": REDACTED},
                                 "tokenEnv": REDACTED, "payloadTemplate": "slack"}
    assert hidden[1]["with"]["url"] == f"http://{REDACTED}@h/x?token={REDACTED}"
    assert redact_spec(spec, references=True)[0]["with"]["tokenEnv"] == "GH_TOKEN"
    assert spec[0]["with"]["url"].endswith("/s3"), "the input is not changed"


def test_path_url() -> None:
    assert path_url("https://user:pw@prom.example:9090/api/v1/query?token=x#f") == \
        "https://prom.example:9090/api/v1/query"
    assert path_url("http://[::1]:9090/q") == "http://[::1]:9090/q"


def test_path_url_of_what_is_not_a_url() -> None:
    assert path_url("http://h:99999/") == "<invalid URL>"
    assert path_url("http://[::1/") == "<invalid URL>"


def test_origin_url() -> None:
    assert origin_url("https://u:p@Example.com:8443/a?b") == "https://example.com:8443/…"
    assert origin_url("http://[::1]:9/") == "http://[::1]:9"
    assert origin_url("not a url") == REDACTED
    assert origin_url("http://h:99999/") == REDACTED

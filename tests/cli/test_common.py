"""Values files given by URL (`-f https://…`), fetched from a real server on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from tests.servers.http_target import ThreadedHttpTarget

from canarist.cli.common import _read_values_file
from canarist.core.errors import UnavailableError, ValuesError
from canarist.core.limits import MAX_FILE_BYTES

VALUES = "tasks: [http]\nhttp:\n  url: http://example/\n"


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with ThreadedHttpTarget() as url:
        yield url


def test_values_are_fetched_by_url(base: str) -> None:
    assert _read_values_file(f"{base}/values.yaml?body={quote(VALUES)}") == {
        "tasks": ["http"], "http": {"url": "http://example/"}}


def test_what_cannot_be_fetched_or_used_is_one_line_naming_the_flag(base: str) -> None:
    with pytest.raises(UnavailableError) as missing:
        _read_values_file(f"{base}/nope.yaml?status=404&token=t0p")
    assert missing.value.message == (f"-f {base}/nope.yaml?status=404&token=t0p: cannot fetch "
                                     f"values: HTTP 404 from {base}/nope.yaml")
    with pytest.raises(ValuesError, match=r"the values are larger than 64 MiB$"):
        _read_values_file(f"{base}/big.yaml?size={MAX_FILE_BYTES + 1}")
    with pytest.raises(ValuesError, match=r"expected a mapping of values at the top level$"):
        _read_values_file(f"{base}/list.yaml?body={quote('- 1')}")


def test_nothing_listening_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UnavailableError, match=r"^-f http://127\.0\.0\.1:\d+/v\.yaml: cannot "
                                               r"fetch values: connection refused"):
        _read_values_file(f"http://127.0.0.1:{port}/v.yaml")

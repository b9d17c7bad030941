"""Local files the user names (values, experiments, payloads, templates), read within a cap.

A file larger than `core.limits.MAX_FILE_BYTES` is refused after reading at most one byte more
than the cap, so `/dev/zero` or a multi-gigabyte file costs 64 MiB and a fraction of a second.
"""

from __future__ import annotations

from pathlib import Path

from canarist.core.errors import InputError
from canarist.core.limits import MAX_FILE_BYTES, MIB

__all__ = ["read_bytes_bounded", "read_text_bounded"]


def read_bytes_bounded(path: str | Path, *, name: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The file's bytes; InputError naming `name` (if not empty) when it is larger than `limit`.
    OSError (missing, unreadable) is the caller's to word."""
    with Path(path).open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"{_prefix(name)}the file is larger than {_size(limit)}")
    return data


def read_text_bounded(path: str | Path, *, name: str, limit: int = MAX_FILE_BYTES) -> str:
    """The file as UTF-8 text; InputError naming `name` when too large or not UTF-8."""
    data = read_bytes_bounded(path, name=name, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{_prefix(name)}the file is not UTF-8 text (byte {exc.start + 1} is "
                         f"0x{data[exc.start]:02x})") from None


def _prefix(name: str) -> str:
    return f"{name}: " if name else ""


def _size(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit:,} bytes"

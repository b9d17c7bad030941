"""The optional parts of canarist and the packages each one installs.

`pip install canarist` is what a CI job or the in-cluster image needs. Two parts are extras:

* `canarist[sandbox]`: `canarist sandbox` and `canarist demo` (the local KServe sandbox);
* `canarist[proto]`: compiling a user's `.proto` for the grpc task (server reflection and the
  shipped KServe V2 proto need no compiler).

Code that needs an extra calls `require` first, so that a missing package is one line that
says what to install (bad setup: exit 2), never an ImportError traceback.
"""

from __future__ import annotations

import importlib.util
from typing import Final

from canarist.core.errors import InputError

__all__ = ["EXTRAS", "MissingExtra", "missing_module", "require"]

EXTRAS: Final[dict[str, tuple[str, ...]]] = {
    "sandbox": ("croniter", "prometheus_client"),
    "proto": ("grpc_tools",),
}
"""Extra name -> the top-level modules that only that extra installs."""


class MissingExtra(InputError):
    """A command or task needs an extra that is not installed."""

    def __init__(self, what: str, extra: str, module: str) -> None:
        super().__init__(f"{what} needs canarist[{extra}], which is not installed (no module "
                         f"{module!r}); install it with: pip install 'canarist[{extra}]'")
        self.extra = extra
        self.module = module


def missing_module(extra: str) -> str | None:
    """The first module of `extra` that cannot be imported, or None when all can."""
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return module
    return None


def require(extra: str, what: str) -> None:
    """Raise MissingExtra (exit 2) naming `what` when `extra` is not installed."""
    module = missing_module(extra)
    if module is not None:
        raise MissingExtra(what, extra, module)

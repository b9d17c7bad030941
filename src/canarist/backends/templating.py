"""Go templates executed in a bounded child (see canarist.backends.bounded): provider
templates of `custommetrics`, payload templates of `notify`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from canarist.backends.bounded import Limit, Mark, Overrun, evaluate, evaluate_async, limit_for
from canarist.core import gotemplate
from canarist.core.errors import TemplateError

__all__ = ["execute_bounded", "execute_bounded_async"]


def _execute_each(template: gotemplate.Template, datas: Sequence[object], mark: Mark) -> list[str]:
    outputs: list[str] = []
    for index, data in enumerate(datas):
        mark(index)
        outputs.append(template.execute(data))
    return outputs


def _overrun(template: gotemplate.Template, exc: Overrun, versions: int) -> TemplateError:
    which = f" (version {exc.at})" if versions > 1 and exc.at >= 0 else ""
    return TemplateError(f"{template.name}: executing the template{which} {exc}")


def execute_bounded(template: gotemplate.Template, datas: Sequence[object],
                    limit: Limit | None = None) -> list[str]:
    """Execute `template` with each of `datas` as dot, in a child bounded in time (`limit`,
    by default `backends.bounded.DEFAULT_LIMIT_S`) and memory (see canarist.backends.bounded).

    TemplateError when it does not execute, runs past the limit or out of memory.
    """
    limit = limit or limit_for(None)
    try:
        return evaluate(functools.partial(_execute_each, template, list(datas)), limit)
    except Overrun as exc:
        raise _overrun(template, exc, len(datas)) from None


async def execute_bounded_async(template: gotemplate.Template, datas: Sequence[object],
                                limit: Limit) -> list[str]:
    """`execute_bounded` without blocking the event loop (a task's, with its deadline)."""
    try:
        return await evaluate_async(functools.partial(_execute_each, template, list(datas)),
                                    limit)
    except Overrun as exc:
        raise _overrun(template, exc, len(datas)) from None

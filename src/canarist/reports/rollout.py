"""The rollout timeline, as every report shows it: one headline, one row per action."""

from __future__ import annotations

from typing import Any

from canarist.core.experiment import RolloutAction, RolloutRecord
from canarist.core.redact import shown_text


def move(action: RolloutAction) -> str:
    if action.action in ("hold", "stop"):
        return f"{action.from_} %" if action.from_ is not None else ""
    return f"{action.from_} % -> {action.to} %"


def action_rows(record: RolloutRecord) -> list[list[str]]:
    """time, action (`step (dry run)`), move, verdict, reason — newest last."""
    rows = []
    for action in record.actions:
        name = action.action + (" (dry run)" if action.dry_run else "")
        rows.append([action.time.strftime("%Y-%m-%d %H:%M:%S"), name, move(action),
                     action.verdict, shown_text(action.reason)])
    return rows


def to_data(record: RolloutRecord | None) -> dict[str, Any] | None:
    """The JSON report's `rollout`."""
    if record is None:
        return None
    return {
        "state": record.state,
        "percent": record.percent,
        "candidate": record.candidate,
        "baseline": record.baseline,
        "reason": shown_text(record.reason),
        "actions": [
            {"time": action.time.isoformat().replace("+00:00", "Z"), "action": action.action,
             "from": action.from_, "to": action.to, "verdict": action.verdict,
             "reason": shown_text(action.reason), "dryRun": action.dry_run}
            for action in record.actions
        ],
    }

"""`slack`, `github` and `notify`: all become `notify` tasks.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from canarist.core.chart.sheet import Entry, Sheet, scalar_text, truthy, value_key
from canarist.core.validation import ValuesKeys
from canarist.core.validation import show_value as _show

_GITHUB_NAME = re.compile(r"[A-Za-z0-9._-]+")


def soft_failure(sheet: Sheet, task: str, section: Mapping[str, Any]) -> bool:
    value = section.get("softFailure")
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    sheet.problem(value_key(task, "softFailure"), f"expected true or false, got {_show(value)}")
    return True


def notify_entry(
    sheet: Sheet, task: str, section: Mapping[str, Any], with_: dict[str, Any]
) -> dict[str, Any]:
    entry: dict[str, Any] = {"task": "notify"}
    condition = section.get("if")
    if condition is not None:
        text = sheet.string(value_key(task, "if"), condition, "a condition such as SLOs()")
        if text:
            entry["if"] = text
    template_url = section.get("payloadTemplateURL")
    if template_url is not None:
        url = sheet.string(value_key(task, "payloadTemplateURL"), template_url, "a URL")
        if url:
            with_["payloadTemplateURL"] = url
    else:
        with_["payloadTemplate"] = task
    with_["softFailure"] = soft_failure(sheet, task, section)
    entry["with"] = with_
    return entry


def slack(sheet: Sheet) -> list[Entry]:
    section = sheet.section("slack")
    if section is None:
        return []
    sheet.unknown_keys("slack", section, ("url", "if", "softFailure", "payloadTemplateURL"))
    url = section.get("url")
    if not truthy(url):
        sheet.problem("slack.url", "please set a value for the url parameter")
    else:
        sheet.string("slack.url", url, "a Slack webhook URL")
    return [(notify_entry(sheet, "slack", section, {"url": url, "method": "POST"}),
             ValuesKeys("slack"))]


def github(sheet: Sheet) -> list[Entry]:
    section = sheet.section("github")
    if section is None:
        return []
    sheet.unknown_keys(
        "github", section,
        ("owner", "repo", "token", "tokenEnv", "tokenFile", "if", "softFailure",
         "payloadTemplateURL"),
    )
    names: dict[str, str] = {}
    for field in ("owner", "repo"):
        value = section.get(field)
        if not truthy(value):
            sheet.problem(value_key("github", field), f"please set a value for the {field} parameter")
            continue
        text = scalar_text(value)
        if text is None or not _GITHUB_NAME.fullmatch(text):
            sheet.problem(
                value_key("github", field),
                f"expected a GitHub {field} name (letters, digits, '.', '_', '-'), "
                f"got {_show(value)}",
            )
            continue
        names[field] = text
    sources = [key for key in ("token", "tokenEnv", "tokenFile") if truthy(section.get(key))]
    if not sources:
        sheet.problem(
            "github.token",
            "please set a value for the token parameter (or github.tokenEnv or "
            "github.tokenFile, which keep the token out of the experiment)",
        )
    elif len(sources) > 1:
        sheet.problem(
            "github.token",
            f"set only one of github.token, github.tokenEnv, github.tokenFile "
            f"(got {', '.join('github.' + s for s in sources)})",
        )
    owner, repo = names.get("owner", ""), names.get("repo", "")
    with_: dict[str, Any] = {
        "url": f"https://api.github.com/repos/{owner}/{repo}/dispatches",
        "method": "POST",
    }
    headers: dict[str, str] = {"Accept": "application/vnd.github+json"}
    if len(sources) == 1:
        source = sources[0]
        value = sheet.string(value_key("github", source), section[source], "a non-empty string")
        if source == "token":
            headers["Authorization"] = f"token {value}"
        else:
            with_[source] = value
            with_["tokenScheme"] = "token"
    with_["headers"] = headers
    return [(notify_entry(sheet, "github", section, with_), ValuesKeys("github"))]


def notify(sheet: Sheet) -> list[Entry]:
    section = sheet.section("notify")
    if section is None:
        return []
    if not truthy(section.get("url")):
        sheet.problem("notify.url", "no URL was provided for notify task")
    with_ = copy.deepcopy(section)
    entry: dict[str, Any] = {"task": "notify"}
    condition = with_.pop("if", None)
    if condition is not None:
        text = sheet.string("notify.if", condition, "a condition such as SLOs()")
        if text:
            entry["if"] = text
    entry["with"] = with_
    return [(entry, ValuesKeys("notify"))]

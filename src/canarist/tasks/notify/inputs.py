"""The notify task's inputs: where to send, how, with which payload template and token.

Checked before anything runs: the URLs (http or https, with a host), the method (GET or
POST), header names and values, and that only one payload template, one token source and
one way of setting the Authorization header are given.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

from pydantic import Field, StrictBool, field_validator, model_validator

from canarist.backends.httpclient import has_user_info, http_url_problem
from canarist.core.durations import parse_duration
from canarist.core.fields import Duration, header_value_problem, url_problem
from canarist.core.validation import FieldProblem
from canarist.tasks.base import TaskInputs

BUILTIN_TEMPLATES: Final = ("slack", "github")
DEFAULT_TIMEOUT: Final = "30s"
TEMPLATE_SIZE_LIMIT: Final = 1024 * 1024
BODY_LOG_LIMIT: Final = 2048

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SCHEME_WORD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _text(value: Any, what: str) -> str:
    """A header or parameter value as text; numbers and booleans as Go's JSON would show them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return json.dumps(value)
    raise ValueError(f"{what}: expected text, got {type(value).__name__}")


def _http_url(value: str | None, key: str) -> str | None:
    if value is None:
        return None
    wrong = http_url_problem(value)
    if wrong is not None:
        raise ValueError(f"{key}: {wrong}")
    problem = url_problem(value, echo=False)
    if problem is not None:
        raise ValueError(f"{key}: {problem}")
    return value


class NotifyInputs(TaskInputs):
    url: str | None = None
    method: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    payload_template: str | None = Field(default=None, alias="payloadTemplate")
    payload_template_url: str | None = Field(default=None, alias="payloadTemplateURL")
    payload_template_file: str | None = Field(default=None, alias="payloadTemplateFile")
    soft_failure: StrictBool = Field(default=False, alias="softFailure")
    token_env: str | None = Field(default=None, alias="tokenEnv")
    token_file: str | None = Field(default=None, alias="tokenFile")
    token_scheme: str | None = Field(default=None, alias="tokenScheme")
    timeout: Duration = DEFAULT_TIMEOUT

    @field_validator("params", "headers", mode="before")
    @classmethod
    def _text_values(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            return value
        return {str(k): _text(v, str(k)) for k, v in value.items()}

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"invalid header name {name!r}")
            problem = header_value_problem(text)
            if problem is not None:
                raise ValueError(f"header {name}: {problem}")
        return value

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str | None) -> str | None:
        if value is None:
            return None
        method = value.upper()
        if method not in ("GET", "POST"):
            raise ValueError(f"method: expected GET or POST, got {value!r}")
        return method

    @field_validator("payload_template")
    @classmethod
    def _builtin(cls, value: str | None) -> str | None:
        if value is not None and value not in BUILTIN_TEMPLATES:
            raise ValueError(
                f"payloadTemplate: unknown built-in template {value!r}; expected one of "
                + ", ".join(BUILTIN_TEMPLATES)
            )
        return value

    @field_validator("token_scheme")
    @classmethod
    def _scheme_word(cls, value: str | None) -> str | None:
        if value is not None and not _SCHEME_WORD.fullmatch(value):
            raise ValueError("tokenScheme: expected one word such as Bearer or token")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NotifyInputs:
        if not self.url:
            raise ValueError("no URL was provided for notify task")
        _http_url(self.url, "url")
        _http_url(self.payload_template_url, "payloadTemplateURL")
        given = [key for key, value in (
            ("payloadTemplate", self.payload_template),
            ("payloadTemplateURL", self.payload_template_url),
            ("payloadTemplateFile", self.payload_template_file),
        ) if value is not None]
        if len(given) > 1:
            raise ValueError(f"set only one of {', '.join(given)}")
        if self.token_env is not None and self.token_file is not None:
            raise ValueError("set only one of tokenEnv, tokenFile")
        if self.token_env == "" or self.token_file == "":
            raise ValueError("tokenEnv and tokenFile must not be empty")
        has_token = self.token_env is not None or self.token_file is not None
        if self.token_scheme is not None and not has_token:
            raise ValueError("tokenScheme needs tokenEnv or tokenFile")
        has_header = any(name.lower() == "authorization" for name in self.headers)
        if has_token and has_header:
            raise ValueError("an Authorization header and tokenEnv/tokenFile both set it; keep one")
        if has_user_info(self.url) and (has_token or has_header):
            # the user:password@ in the URL is sent as Authorization too: one would be lost
            raise FieldProblem("url", "user info (user:password@) and "
                               + ("tokenEnv/tokenFile" if has_token else "an Authorization header")
                               + " both set the Authorization header; keep one")
        return self

    @property
    def timeout_s(self) -> float:
        return parse_duration(self.timeout, field="timeout")

    @property
    def has_template(self) -> bool:
        return any(v is not None for v in (
            self.payload_template, self.payload_template_url, self.payload_template_file))

    @property
    def effective_method(self) -> str:
        return self.method or ("POST" if self.has_template else "GET")

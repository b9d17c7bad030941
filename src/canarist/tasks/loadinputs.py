"""A load test's inputs for each version and endpoint (shared by `http` and `grpc`).

The inputs come in layers: the top level, `endpoints.<id>` (each recorded as its own
provider, `<task>-<id>`), and canarist's `versionValues[i]` (one map per version of the
service, each recorded for that version). For version i and endpoint e, what
`versionValues[i]` sets wins, then what e sets, then the top level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from pydantic import BaseModel

from canarist.core.validation import Location

E = TypeVar("E", bound=BaseModel)


def layered(model: type[E], top: BaseModel, *layers: E | None) -> E:
    """`top`'s inputs that `model` has, overridden by each layer's set inputs in turn."""
    shared_only = set(type(top).model_fields) - set(model.model_fields)
    data = top.model_dump(by_alias=True, exclude=shared_only, exclude_none=True)
    for layer in layers:
        if layer is not None:
            data.update(layer.model_dump(by_alias=True, exclude_none=True))
    return model.model_validate(data)


def provider_name(task: str, endpoint: str | None) -> str:
    """What one endpoint's metrics are recorded under: `<task>-<id>`, or `<task>` alone."""
    return task if endpoint is None else f"{task}-{endpoint}"


def providers(task: str, endpoints: Mapping[str, object] | None) -> list[str]:
    """The providers a load task records: one per endpoint, or the task's own name."""
    return [provider_name(task, eid) for eid in endpoints] if endpoints else [task]


def every_layer(top: E, endpoints: Mapping[str, E] | None, versions: Sequence[E] | None
                ) -> list[tuple[Location, E]]:
    """Each layer of inputs as given, at the key it was given at: the top level, then the
    endpoints in the order of their ids, then the versions."""
    found: list[tuple[Location, E]] = [((), top)]
    found += [(("endpoints", eid), ep) for eid, ep in sorted((endpoints or {}).items())]
    found += [(("versionValues", index), ep) for index, ep in enumerate(versions or [])]
    return found


def version_targets(
    task: str, model: type[E], top: BaseModel, endpoints: Mapping[str, E] | None,
    versions: Sequence[E] | None,
) -> list[list[tuple[str, E]]]:
    """For each version (one without `versionValues`), the (provider, layered inputs) of each
    endpoint, endpoints in the order of their ids."""
    per_version: list[list[tuple[str, E]]] = []
    own_inputs: Sequence[E | None] = versions or [None]
    for own in own_inputs:
        if endpoints:
            per_version.append([(provider_name(task, eid), layered(model, top, ep, own))
                                for eid, ep in sorted(endpoints.items())])
        else:
            per_version.append([(task, layered(model, top, own))])
    return per_version


def unset_input(
    field: str, top: BaseModel, endpoints: Mapping[str, BaseModel] | None,
    versions: Sequence[BaseModel] | None,
) -> Location | None:
    """Where a required input is set in no layer, as the key to report it at (None: it is set
    for every version and endpoint).

    An endpoint without it is named when there are endpoints (a version or the top level could
    set it for all), else the version without it, else the top-level key.
    """
    key = type(top).model_fields[field].alias or field
    for index, own in enumerate(versions or [None]):
        if getattr(top, field) or (own is not None and getattr(own, field)):
            continue
        if endpoints:
            for eid, ep in endpoints.items():
                if not getattr(ep, field):
                    return ("endpoints", eid, key)
        elif versions:
            return ("versionValues", index, key)
        else:
            return (key,)
    return None

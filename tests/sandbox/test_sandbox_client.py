"""SandboxApi's answers in the sandbox's words: a missing InferenceService is the user's input
(exit 2), an API that does not answer says so (exit 3)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from tests.fakes import KUBE_TOKEN, kubeconfig_for

from canarist.core.errors import InputError, UnavailableError
from canarist.sandbox.client import SandboxApi
from canarist.sandbox.kubeapi import RunningApi
from canarist.sandbox.kubeconfig import write_kubeconfig


def test_a_missing_inference_service_is_bad_input(kube_api: RunningApi, tmp_path: Path) -> None:
    with SandboxApi(kubeconfig_for(kube_api, tmp_path / "k")) as api:
        with pytest.raises(InputError, match=r'^default/nope: .*"nope" not found$') as got:
            api.get("default", "nope")
        assert got.value.exit_code == 2
        with pytest.raises(InputError, match=r'"nope" not found in namespace "default"$'):
            api.delete("default", "nope")
        assert api.list() == []


def test_an_api_that_does_not_answer_is_named(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with SandboxApi(write_kubeconfig(tmp_path / "k", url, KUBE_TOKEN)) as api, \
            pytest.raises(UnavailableError, match=f"the sandbox API at {url} is not reachable: "
                                                  "Connection refused$") as got:
        api.list()
    assert got.value.exit_code == 3

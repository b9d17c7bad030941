"""Test-wide settings."""

from __future__ import annotations

import os

from hypothesis import settings

# Shared fakes (tests/fakes/): the fixtures `kube_api` and `kubeconfig`.
pytest_plugins = ["tests.fakes"]

# CI runs the same generated examples every time (a property test must not pass or fail by
# chance there); locally every run explores new ones. No deadline: the machine is shared.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

"""Every dependency pyproject.toml installs is imported by the product, where it belongs.

* a runtime dependency (a plain `pip install canarist`) is imported by code outside the
  sandbox: the plain install must not carry a package only the sandbox, the tests or nothing
  at all uses;
* the `sandbox` extra's packages are imported by the sandbox and by nothing else;
* the `proto` extra's package is used by the gRPC schema loader only;
* `canarist.core.extras` names the same modules as pyproject.toml's extras.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

from canarist.core import extras

ROOT = Path(__file__).parents[2]
SRC = ROOT / "src" / "canarist"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def distribution_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return match.group(0)


@functools.cache
def installed() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def modules_of(distribution: str) -> set[str]:
    """The top-level modules `distribution` installs (in the environment running the tests)."""
    wanted = re.sub(r"[-_.]+", "-", distribution).lower()
    return {module for module, owners in installed().items()
            if any(re.sub(r"[-_.]+", "-", owner).lower() == wanted for owner in owners)
            and not module.startswith("_")}


def sources(*, inside_sandbox: bool | None) -> dict[Path, str]:
    found: dict[Path, str] = {}
    for path in SRC.rglob("*.py"):
        if path.name.endswith(("_pb2.py", "_pb2_grpc.py")):
            continue
        in_sandbox = (SRC / "sandbox") in path.parents
        if inside_sandbox is None or in_sandbox == inside_sandbox:
            found[path] = path.read_text(encoding="utf-8")
    return found


def importers(module: str, code: dict[Path, str]) -> list[Path]:
    """Files that import `module`: an import statement, import_module or find_spec."""
    pattern = re.compile(rf"^\s*(?:import|from)\s+{re.escape(module)}(?:[.\s]|$)|"
                         rf"(?:import_module|find_spec)\(\s*[\"']{re.escape(module)}[.\"']", re.M)
    return sorted(path for path, text in code.items() if pattern.search(text))


RUNTIME = [distribution_name(r) for r in PROJECT["dependencies"]]
EXTRAS = {name: [distribution_name(r) for r in reqs]
          for name, reqs in PROJECT["optional-dependencies"].items() if name != "dev"}


def test_the_plain_install_has_no_unused_and_no_dropped_packages() -> None:
    names = {name.lower() for name in RUNTIME}
    for dropped in ("plotly", "scipy", "croniter", "prometheus-client", "grpcio-tools",
                    "kubernetes"):
        assert dropped not in names
    assert {"numpy", "matplotlib", "grpcio", "aiohttp"} <= names


@pytest.mark.parametrize("distribution", RUNTIME)
def test_each_runtime_dependency_is_imported_outside_the_sandbox(distribution: str) -> None:
    modules = modules_of(distribution)
    assert modules, f"{distribution} is not installed in the test environment"
    code = sources(inside_sandbox=False)
    used = {module: importers(module, code) for module in modules}
    assert any(used.values()), f"nothing outside the sandbox imports {distribution} ({sorted(modules)})"


@pytest.mark.parametrize(("extra", "distribution"),
                         [(extra, d) for extra, names in EXTRAS.items() for d in names])
def test_each_extra_is_used_by_its_part_only(extra: str, distribution: str) -> None:
    modules = modules_of(distribution)
    assert modules, f"{distribution} is not installed in the test environment"
    everywhere = sources(inside_sandbox=None)
    users = sorted({path.relative_to(SRC).as_posix() for module in modules
                    for path in importers(module, everywhere)})
    assert users, f"nothing imports {distribution}"
    if extra == "sandbox":
        assert all(user.startswith("sandbox/") for user in users), users
    else:
        assert users == ["backends/loadgen/grpc_schema.py"], users


def test_core_extras_names_the_modules_of_each_extra() -> None:
    assert set(extras.EXTRAS) == set(EXTRAS)
    for extra, distributions in EXTRAS.items():
        expected = {module for d in distributions for module in modules_of(d)}
        assert set(extras.EXTRAS[extra]) == expected, extra


def test_missing_module_and_require(monkeypatch: pytest.MonkeyPatch) -> None:
    assert extras.missing_module("sandbox") is None
    extras.require("proto", "this")
    monkeypatch.setitem(__import__("sys").modules, "prometheus_client", None)
    assert extras.missing_module("sandbox") == "prometheus_client"
    with pytest.raises(extras.MissingExtra) as caught:
        extras.require("sandbox", "canarist sandbox")
    assert caught.value.exit_code == 2 and caught.value.extra == "sandbox"
    assert str(caught.value) == (
        "canarist sandbox needs canarist[sandbox], which is not installed (no module "
        "'prometheus_client'); install it with: pip install 'canarist[sandbox]'")

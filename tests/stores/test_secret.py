"""The experiment Secret: 403 retries, optimistic concurrency, bounded history."""

from __future__ import annotations

import base64
import copy
import json
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.fakes import KUBE_TOKEN

from canarist.backends.kube import ClusterCalls, KubeClient
from canarist.core.errors import InputError, UnavailableError
from canarist.core.experiment import Experiment, HistBucket, MetricMeta, MetricType, new_result
from canarist.core.insights import add_histogram, add_sample, add_value, ensure_insights, register_metric
from canarist.core.yamltext import dump_yaml
from canarist.sandbox.kubeapi import RunningApi
from canarist.sandbox.kubeconfig import write_kubeconfig
from canarist.sandbox.store import ObjectStore, ResourceKey
from canarist.stores.secret import ExperimentLocked, HistoryLimits, SecretStore, compact, merge

SECRETS = ResourceKey("", "v1", "secrets")
SERVICE_ACCOUNTS = ResourceKey("", "v1", "serviceaccounts")
ROLES = ResourceKey("rbac.authorization.k8s.io", "v1", "roles")
ROLE_BINDINGS = ResourceKey("rbac.authorization.k8s.io", "v1", "rolebindings")
SPEC = [{"task": "assess", "with": {"SLOs": {"upper": [{"metric": "m/a", "limit": 1}]}}}]


@dataclass
class Api:
    api: RunningApi
    token: str
    tmp: Path
    clients: list[KubeClient] = field(default_factory=list)

    def calls(self, token: str | None = None, name: str = "admin") -> ClusterCalls:
        path = write_kubeconfig(self.tmp / f"{name}.kubeconfig", self.api.url, token or self.token)
        self.clients.append(KubeClient.connect(str(path)))
        return ClusterCalls(self.clients[-1])


@pytest.fixture
def api(kube_api: RunningApi, tmp_path: Path) -> Iterator[Api]:
    made = Api(kube_api, KUBE_TOKEN, tmp_path)
    yield made
    for client in made.clients:
        client.close()


def put_secret(store: ObjectStore, data: dict[str, Any], *, revision: str = "1",
               name: str = "g") -> None:
    text = dump_yaml(data).encode()
    store.create(SECRETS, "default", {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "annotations": {"canarist.dev/revision": revision},
                     "labels": {"canarist.dev/group": name}},
        "data": {"experiment.yaml": base64.b64encode(text).decode()}})


def stored(store: ObjectStore, name: str = "g") -> dict[str, Any]:
    secret = store.get(SECRETS, "default", name)
    loaded: dict[str, Any] = yaml.safe_load(base64.b64decode(secret["data"]["experiment.yaml"]))
    return loaded


def fresh(now: datetime | None = None) -> dict[str, Any]:
    result = new_result(now=now or datetime(2024, 1, 1, tzinfo=UTC))
    return {"spec": SPEC, "result": result.model_dump(by_alias=True, mode="json", exclude_none=True)}


def record(experiment: Experiment, name: str, value: float) -> None:
    assert experiment.result is not None
    insights = ensure_insights(experiment.result, 1)
    register_metric(insights, name, MetricMeta(type=MetricType.GAUGE))
    add_value(insights, 0, name, value)


# -- reading --------------------------------------------------------------------------------


def test_read_retries_403_until_rbac_arrives(api: Api) -> None:
    put_secret(api.api.store, fresh())
    api.api.store.create(SERVICE_ACCOUNTS, "default", {"metadata": {"name": "runner"}})
    runner = api.calls(api.api.issue_token("default", "runner"), "runner")

    granting_began = threading.Event()

    def grant() -> None:
        time.sleep(2.0)
        granting_began.set()
        api.api.store.create(ROLES, "default", {"metadata": {"name": "g"}, "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["g"],
             "verbs": ["get", "update"]}]})
        api.api.store.create(ROLE_BINDINGS, "default", {
            "metadata": {"name": "g"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "g"},
            "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "default"}]})

    granting = threading.Thread(target=grant)
    granting.start()
    store = SecretStore(runner, "default", "g", retry_interval_s=0.2)
    experiment = store.read()
    assert granting_began.is_set()  # forbidden until then: the read waited for the Role
    granting.join()
    assert experiment.spec[0].task == "assess"
    record(experiment, "m/a", 0.5)
    store.write(experiment)  # the Role allows update too
    assert stored(api.api.store)["result"]["insights"]["nonHistMetricValues"] == [{"m/a": [0.5]}]


def test_read_gives_up_on_403_after_the_wait(api: Api) -> None:
    put_secret(api.api.store, fresh())
    api.api.store.create(SERVICE_ACCOUNTS, "default", {"metadata": {"name": "runner"}})
    runner = api.calls(api.api.issue_token("default", "runner"), "runner")
    store = SecretStore(runner, "default", "g", forbidden_wait_s=1.0, retry_interval_s=0.2)
    with pytest.raises(UnavailableError, match=r"unable to get secret g in namespace default.*forbidden"):
        store.read()


def test_missing_group_fails_at_once(api: Api) -> None:
    store = SecretStore(api.calls(), "default", "nope", retry_interval_s=120.0)
    started = time.monotonic()
    with pytest.raises(InputError, match="experiment group nope not found in namespace default"):
        store.read()
    assert time.monotonic() - started < 60  # one retry would take 120 s


# -- concurrent writers -------------------------------------------------------------------


def test_two_writers_conflict_and_nothing_is_lost(api: Api) -> None:
    put_secret(api.api.store, fresh())
    first, second = (SecretStore(api.calls(name=n), "default", "g") for n in ("one", "two"))
    mine, theirs = first.read(), second.read()
    record(mine, "m/a", 1.0)
    record(theirs, "m/b", 2.0)
    first.write(mine)
    second.write(theirs)  # 409: re-read, merge, retry
    record(mine, "m/a", 3.0)
    first.write(mine)  # 409 again
    values = stored(api.api.store)["result"]["insights"]["nonHistMetricValues"][0]
    assert values == {"m/a": [1.0, 3.0], "m/b": [2.0]}
    info = stored(api.api.store)["result"]["insights"]["metricsInfo"]
    assert set(info) == {"m/a", "m/b"}


def test_threads_appending_to_one_metric_keep_every_value(api: Api) -> None:
    put_secret(api.api.store, fresh())
    limits = HistoryLimits(values=1000)
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            store = SecretStore(api.calls(name=f"w{offset}"), "default", "g", limits=limits)
            experiment = store.read()
            for i in range(15):
                record(experiment, "m/a", offset + i)
                store.write(experiment)
                time.sleep(random.uniform(0, 0.01))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(base,)) for base in (0, 100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    values = stored(api.api.store)["result"]["insights"]["nonHistMetricValues"][0]["m/a"]
    assert sorted(values) == sorted([*range(15), *range(100, 115)])


def test_a_relaunched_group_is_never_overwritten(api: Api) -> None:
    put_secret(api.api.store, fresh())
    store = SecretStore(api.calls(), "default", "g")
    experiment = store.read()
    api.api.store.delete(SECRETS, "default", "g")
    put_secret(api.api.store, fresh(datetime(2025, 1, 1, tzinfo=UTC)), revision="2")
    record(experiment, "m/a", 1.0)
    with pytest.raises(UnavailableError, match=r"relaunched \(revision 1 -> 2\); this run stops"):
        store.write(experiment)
    assert "insights" not in stored(api.api.store)["result"]


def test_a_deleted_group_stops_the_run(api: Api) -> None:
    put_secret(api.api.store, fresh())
    store = SecretStore(api.calls(), "default", "g")
    experiment = store.read()
    api.api.store.delete(SECRETS, "default", "g")
    with pytest.raises(UnavailableError, match="was deleted; this run stops"):
        store.write(experiment)


def test_writes_keep_labels_and_annotations(api: Api) -> None:
    put_secret(api.api.store, fresh())
    store = SecretStore(api.calls(), "default", "g")
    experiment = store.read()
    record(experiment, "m/a", 1.0)
    store.write(experiment)
    meta = api.api.store.get(SECRETS, "default", "g")["metadata"]
    assert meta["labels"] == {"canarist.dev/group": "g"}
    assert meta["annotations"] == {"canarist.dev/revision": "1"}


def test_merge_rules() -> None:
    base = {"a": [1], "b": 1, "per": {"nonHistMetricValues": [{"x": [1]}, {}]}}
    ours = {"a": [1, 2], "b": 2, "per": {"nonHistMetricValues": [{"x": [1, 2]}, {}]}}
    theirs = {"a": [1, 3], "b": 3, "c": 4, "per": {"nonHistMetricValues": [{"x": [1]}, {"y": [5]}]}}
    assert merge(base, ours, theirs) == {
        "a": [1, 3, 2], "b": 2, "c": 4,
        "per": {"nonHistMetricValues": [{"x": [1, 2]}, {"y": [5]}]}}


# -- bounded history ----------------------------------------------------------------------


class MemorySecrets:
    """Secrets in memory, with resourceVersion conflicts, to run hundreds of loops quickly."""

    def __init__(self, data: dict[str, Any]) -> None:
        text = base64.b64encode(dump_yaml(data).encode()).decode()
        self.secret: dict[str, Any] = {"metadata": {"name": "g", "resourceVersion": "1"},
                                       "data": {"experiment.yaml": text}}
        self.largest = 0

    def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.secret)

    def replace_secret(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        version = int(self.secret["metadata"]["resourceVersion"])
        assert body["metadata"]["resourceVersion"] == str(version)
        size = len(base64.b64decode(body["data"]["experiment.yaml"]))
        assert size < 1024 * 1024, "over the Secret limit"
        self.largest = max(self.largest, size)
        self.secret = {**body, "metadata": {**body["metadata"], "resourceVersion": str(version + 1)}}
        return self.get_secret(namespace, name)


@pytest.mark.slow
def test_hundreds_of_loops_stay_under_the_secret_limit() -> None:
    kube = MemorySecrets(fresh())
    rng = random.Random(7)
    loops = 300
    limits = HistoryLimits(samples=100)
    for loop in range(loops):
        store = SecretStore(kube, "default", "g", limits=limits)
        experiment = store.read()
        assert experiment.result is not None
        experiment.result.num_loops += 1
        insights = ensure_insights(experiment.result, 2)
        for version in range(2):
            register_metric(insights, "p/latency-mean", MetricMeta(type=MetricType.GAUGE, units="msec"))
            add_value(insights, version, "p/latency-mean", float(loop))
            register_metric(insights, "grpc/latency", MetricMeta(type=MetricType.SAMPLE, units="msec"))
            add_sample(insights, version, "grpc/latency", [rng.uniform(1, 100) for _ in range(20)])
            register_metric(insights, "http/latency", MetricMeta(type=MetricType.HISTOGRAM, units="msec"))
            add_histogram(insights, version, "http/latency",
                          [HistBucket(lower=b, upper=b + 1, count=1) for b in range(40)])
            add_histogram(insights, version, "http/latency",
                          [HistBucket(lower=rng.uniform(0, 1000), upper=1001, count=1)])
        store.write(experiment)
    final = yaml.safe_load(base64.b64decode(kube.secret["data"]["experiment.yaml"]))
    values = final["result"]["insights"]["nonHistMetricValues"]
    assert final["result"]["numLoops"] == loops
    assert values[0]["p/latency-mean"] == [float(v) for v in range(max(0, loops - 50), loops)]
    assert len(values[1]["grpc/latency"]) == 100
    buckets = final["result"]["insights"]["histMetricValues"][0]["http/latency"]
    assert len(buckets) <= 200
    assert sum(b["count"] for b in buckets) == loops * 41  # merged, not dropped
    assert kube.largest < 700 * 1024


def test_compaction_shrinks_history_until_it_fits() -> None:
    data = fresh()
    data["result"]["insights"] = {
        "numVersions": 1, "metricsInfo": {"s": {"type": "Sample"}, "g": {"type": "Gauge"}},
        "nonHistMetricValues": [{"s": [float(i) + 0.123456789 for i in range(20000)],
                                 "g": list(range(100))}]}
    small = compact(data, HistoryLimits(max_bytes=20 * 1024))
    assert len(dump_yaml(small)) <= 20 * 1024
    kept = small["result"]["insights"]["nonHistMetricValues"][0]
    assert kept["s"][-1] == 19999.123456789 and kept["g"][-1] == 99
    assert data["result"]["insights"]["nonHistMetricValues"][0]["g"] == list(range(100))


# -- the run lease ------------------------------------------------------------------------


def lease_on(store: ObjectStore, name: str = "g") -> dict[str, Any] | None:
    annotations = store.get(SECRETS, "default", name)["metadata"].get("annotations") or {}
    text = annotations.get("canarist.dev/run-lease")
    return None if text is None else dict(json.loads(text))


def test_a_second_run_is_refused_while_the_first_holds_the_lease(api: Api) -> None:
    put_secret(api.api.store, fresh())
    first = SecretStore(api.calls(name="one"), "default", "g")
    second = SecretStore(api.calls(name="two"), "default", "g")
    with first.lease():
        held = lease_on(api.api.store)
        assert held is not None and held["holder"] == first.holder
        assert re.fullmatch(r"pid \d+ on host \S+", first.holder)
        with pytest.raises(ExperimentLocked) as caught, second.lease():
            pass
        assert caught.value.exit_code == 3
        assert re.fullmatch(
            r"experiment group g in namespace default \(Secret default/g\) is being run by "
            r"another canarist run \(pid \d+ on host \S+, lease until \S+Z unless renewed\); "
            r"this one stops without changing it", caught.value.message)
        experiment = first.read()
        record(experiment, "m/a", 1.0)
        first.write(experiment)  # writes keep (and renew) the lease
        assert lease_on(api.api.store) is not None
    meta = api.api.store.get(SECRETS, "default", "g")["metadata"]
    assert meta["annotations"] == {"canarist.dev/revision": "1"}  # given back
    with second.lease():
        assert lease_on(api.api.store)["holder"] == second.holder  # type: ignore[index]
    assert stored(api.api.store)["result"]["insights"]["nonHistMetricValues"] == [{"m/a": [1.0]}]


def test_a_crashed_holder_blocks_only_until_its_lease_lapses(api: Api) -> None:
    put_secret(api.api.store, fresh())
    crashed = SecretStore(api.calls(name="one"), "default", "g", lease_s=1.5)
    crashed.acquire()  # and never renews nor releases: the process died
    later = SecretStore(api.calls(name="two"), "default", "g")
    with pytest.raises(ExperimentLocked), later.lease():
        pass
    time.sleep(1.7)
    with later.lease():
        assert lease_on(api.api.store)["holder"] == later.holder  # type: ignore[index]


def test_the_heartbeat_keeps_a_quiet_run_s_lease(api: Api) -> None:
    put_secret(api.api.store, fresh())
    quiet = SecretStore(api.calls(name="one"), "default", "g", lease_s=2.0, renew_s=0.3)
    other = SecretStore(api.calls(name="two"), "default", "g")
    with quiet.lease():
        for _ in range(6):  # 4.5 s without a write: more than twice the lease
            time.sleep(0.75)
            with pytest.raises(ExperimentLocked), other.lease():
                pass


def test_of_runs_starting_together_exactly_one_gets_the_lease(api: Api) -> None:
    put_secret(api.api.store, fresh())
    for _round in range(5):
        barrier = threading.Barrier(4)
        outcomes: list[str] = []
        stores = [SecretStore(api.calls(name=f"r{i}"), "default", "g") for i in range(4)]

        def start(store: SecretStore, barrier: threading.Barrier, outcomes: list[str]) -> None:
            barrier.wait()
            try:
                store.acquire()
                outcomes.append("won")
            except ExperimentLocked:
                outcomes.append("refused")

        threads = [threading.Thread(target=start, args=(s, barrier, outcomes)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcomes) == ["refused", "refused", "refused", "won"]
        for store in stores:
            store.release()
        assert lease_on(api.api.store) is None


def test_a_conflict_while_holding_the_lease_loses_no_result(api: Api) -> None:
    """Someone else updates the Secret (409 for the run): the run's values and theirs are
    both kept, and the run keeps its lease."""
    put_secret(api.api.store, fresh())
    runner = SecretStore(api.calls(name="one"), "default", "g")
    meddler = SecretStore(api.calls(name="two"), "default", "g")
    with runner.lease():
        mine = runner.read()
        theirs = meddler.read()
        record(theirs, "m/b", 2.0)
        meddler.write(theirs)
        record(mine, "m/a", 1.0)
        runner.write(mine)  # 409: re-read, merge, retry
        assert lease_on(api.api.store)["holder"] == runner.holder  # type: ignore[index]
    values = stored(api.api.store)["result"]["insights"]["nonHistMetricValues"][0]
    assert values == {"m/a": [1.0], "m/b": [2.0]}

"""ObjectStore: events in resourceVersion order, deletion versions, consistent lists."""

from __future__ import annotations

import threading

from canarist.sandbox.store import ObjectStore, ResourceKey

SECRETS = ResourceKey("", "v1", "secrets")
JOBS = ResourceKey("batch", "v1", "jobs")


def secret(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}


def test_events_arrive_in_resource_version_order_across_threads() -> None:
    store = ObjectStore()
    versions: list[int] = []
    store.watch(lambda event, obj: versions.append(int(obj["metadata"]["resourceVersion"])))

    def writer(prefix: str) -> None:
        for number in range(50):
            store.create(SECRETS, "default", secret(f"{prefix}{number}"))

    threads = [threading.Thread(target=writer, args=(p,)) for p in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert versions == list(range(1, 201))


def test_a_write_inside_a_listener_is_delivered_after_the_current_event() -> None:
    store = ObjectStore()
    seen: list[tuple[str, str]] = []

    def controller(event: str, obj: dict[str, object]) -> None:
        name = obj["metadata"]["name"]  # type: ignore[index]
        if event == "ADDED" and name == "job":
            store.update(JOBS, "default", {**obj, "status": {"active": 1}}, status=True)

    store.watch(controller)
    store.watch(lambda event, obj: seen.append((event, obj["metadata"]["resourceVersion"])))
    store.create(JOBS, "default", {"metadata": {"name": "job"}, "spec": {}})
    assert seen == [("ADDED", "1"), ("MODIFIED", "2")]


def test_delete_carries_the_deletion_version_and_a_failing_listener_is_contained() -> None:
    store = ObjectStore()
    heard: list[str] = []

    def broken(event: str, obj: dict[str, object]) -> None:
        raise RuntimeError("listener bug")

    store.watch(broken)
    store.watch(lambda event, obj: heard.append(event), SECRETS)
    store.create(SECRETS, "default", secret("a"))
    deleted = store.delete(SECRETS, "default", "a")
    assert deleted["metadata"]["resourceVersion"] == "2" == str(store.resource_version)
    assert heard == ["ADDED", "DELETED"]


def test_list_with_version_and_qualified_messages() -> None:
    store = ObjectStore()
    store.create(JOBS, "default", {"metadata": {"name": "j"}})
    items, version = store.list_with_version(JOBS, "default")
    assert [i["metadata"]["name"] for i in items] == ["j"] and version == 1
    try:
        store.update(JOBS, "default", {"metadata": {"name": "j", "resourceVersion": "0"}})
    except Exception as error:
        assert 'on jobs.batch "j"' in str(error)
    else:
        raise AssertionError("a stale resourceVersion must conflict")

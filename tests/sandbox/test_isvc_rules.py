"""InferenceService rules without processes: validation, revisions, traffic, rollout bookkeeping."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from canarist.sandbox.isvc import Service, Target, conditions_of, status_doc, support_problem, template_of
from canarist.sandbox.isvc_manifest import ADDED_LATENCY, ERROR_RATE, Faults, ManifestError, validate_manifest

MODEL_1 = "gs://kfserving-examples/models/sklearn/1.0/model"
MODEL_2 = "gs://kfserving-examples/models/sklearn/1.0/model-2"
REV1 = "sklearn-iris-predictor-default-00001"
REV2 = "sklearn-iris-predictor-default-00002"
REV3 = "sklearn-iris-predictor-default-00003"


def manifest(uri: str = MODEL_1, canary: int | None = None) -> dict[str, Any]:
    predictor: dict[str, Any] = {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri}}
    if canary is not None:
        predictor["canaryTrafficPercent"] = canary
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "sklearn-iris"}, "spec": {"predictor": predictor}}


def annotated(annotations: dict[str, str], uri: str = MODEL_1,
              canary: int | None = None) -> dict[str, Any]:
    doc = manifest(uri, canary)
    doc["metadata"]["annotations"] = annotations
    return doc


def apply(service: Service, doc: dict[str, Any], ready: bool = True) -> None:
    """Apply a manifest; the new revision (if any) becomes ready, then reconcile."""
    checked = validate_manifest(doc)
    created = service.apply(checked["spec"], annotations=checked["metadata"].get("annotations"))
    service.reconcile()
    if created is not None and ready:
        service.set_state(created.name, "Ready")
        service.reconcile()


def split(service: Service) -> dict[str, int]:
    out: dict[str, int] = {}
    for target in service.traffic:
        out[target.revision] = out.get(target.revision, 0) + target.percent
    return out


# -- validation ---------------------------------------------------------------------------

@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d.update(apiVersion="serving.kserve.io/v1alpha2"), "apiVersion"),
    (lambda d: d.update(kind="Service"), "kind"),
    (lambda d: d.pop("metadata"), "metadata"),
    (lambda d: d["metadata"].pop("name"), "metadata.name"),
    (lambda d: d["metadata"].update(name="Sklearn_Iris"), "metadata.name"),
    (lambda d: d.pop("spec"), "spec"),
    (lambda d: d["spec"].update(transformer={}), "spec.transformer"),
    (lambda d: d["spec"]["predictor"].pop("model"), "spec.predictor.model"),
    (lambda d: d["spec"]["predictor"]["model"].pop("storageUri"), "spec.predictor.model.storageUri"),
    (lambda d: d["spec"]["predictor"]["model"].pop("modelFormat"), "spec.predictor.model.modelFormat"),
    (lambda d: d["spec"]["predictor"]["model"]["modelFormat"].pop("name"),
     "spec.predictor.model.modelFormat.name"),
    (lambda d: d["spec"]["predictor"]["model"].update(storageUrl="x"), "spec.predictor.model.storageUrl"),
    (lambda d: d["spec"]["predictor"].update(canaryTrafficPercent=110),
     "spec.predictor.canaryTrafficPercent"),
    (lambda d: d["spec"]["predictor"].update(canaryTrafficPercent="10"),
     "spec.predictor.canaryTrafficPercent"),
    (lambda d: d["spec"]["predictor"].update(xgboost={"storageUri": "x"}), "spec.predictor.xgboost"),
    (lambda d: d["spec"]["predictor"]["model"].update(protocolVersion="v3"),
     "spec.predictor.model.protocolVersion"),
    (lambda d: d.update(extra=1), "extra"),
])
def test_bad_manifests_name_the_field(mutate: Any, field: str) -> None:
    doc = manifest()
    mutate(doc)
    with pytest.raises(ManifestError) as info:
        validate_manifest(doc)
    assert info.value.field == field
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("annotations", "field", "message"), [
    ({ERROR_RATE: "x"}, f"metadata.annotations.{ERROR_RATE}",
     f'metadata.annotations.{ERROR_RATE}: expected a number between 0 and 1, got "x"'),
    ({ERROR_RATE: "1.5"}, f"metadata.annotations.{ERROR_RATE}",
     f'metadata.annotations.{ERROR_RATE}: expected a number between 0 and 1, got "1.5"'),
    ({ERROR_RATE: "-0.1"}, f"metadata.annotations.{ERROR_RATE}", "between 0 and 1"),
    ({ERROR_RATE: ""}, f"metadata.annotations.{ERROR_RATE}", "between 0 and 1"),
    ({ERROR_RATE: "20%"}, f"metadata.annotations.{ERROR_RATE}", "between 0 and 1"),
    ({ADDED_LATENCY: "-5"}, f"metadata.annotations.{ADDED_LATENCY}",
     f'metadata.annotations.{ADDED_LATENCY}: expected a number of milliseconds, 0 or more, got "-5"'),
    ({ADDED_LATENCY: "200ms"}, f"metadata.annotations.{ADDED_LATENCY}", 'got "200ms"'),
    ({ADDED_LATENCY: "nan"}, f"metadata.annotations.{ADDED_LATENCY}", 'got "nan"'),
    ({ADDED_LATENCY: "inf"}, f"metadata.annotations.{ADDED_LATENCY}", 'got "inf"'),
    ({ADDED_LATENCY: "200\n"}, f"metadata.annotations.{ADDED_LATENCY}", "0 or more"),
    ({ADDED_LATENCY: 200}, f"metadata.annotations.{ADDED_LATENCY}",
     "expected a string, got an integer (quote it)"),
    ({"sandbox.canarist.dev/error_rate": "0.1"}, "metadata.annotations.sandbox.canarist.dev/error_rate",
     f"unknown sandbox annotation (known: {ADDED_LATENCY}, {ERROR_RATE})"),
])
def test_bad_sandbox_annotations_name_the_annotation(annotations: dict[str, Any], field: str,
                                                     message: str) -> None:
    with pytest.raises(ManifestError) as info:
        validate_manifest(annotated(annotations))
    assert info.value.field == field
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    in_predictor = manifest()
    in_predictor["spec"]["predictor"]["annotations"] = annotations
    with pytest.raises(ManifestError) as info:
        validate_manifest(in_predictor)
    assert info.value.field == field.replace("metadata.", "spec.predictor.")


@pytest.mark.parametrize(("annotations", "faults"), [
    ({}, Faults()),
    ({"team": "ml", "sandbox.canarist.dev": "not ours"}, Faults()),
    ({ADDED_LATENCY: "200"}, Faults(200.0, 0.0)),
    ({ADDED_LATENCY: "12.5", ERROR_RATE: "0.2"}, Faults(12.5, 0.2)),
    ({ADDED_LATENCY: "0", ERROR_RATE: "0"}, Faults()),
    ({ADDED_LATENCY: "1e3", ERROR_RATE: "1"}, Faults(1000.0, 1.0)),
    ({ERROR_RATE: ".5"}, Faults(0.0, 0.5)),
])
def test_good_sandbox_annotations_are_faults(annotations: dict[str, str], faults: Faults) -> None:
    validate_manifest(annotated(annotations))
    revision = Service("sklearn-iris", "default").apply(annotated(annotations)["spec"],
                                                         annotations=annotations)
    assert revision is not None and revision.faults == faults


def test_tutorial_manifests_and_legacy_schema_are_accepted() -> None:
    validate_manifest(manifest())
    validate_manifest(manifest(MODEL_2, canary=10))
    legacy = manifest()
    legacy["spec"]["predictor"] = {"sklearn": {"storageUri": MODEL_1}}
    validate_manifest(legacy)
    assert template_of(legacy["spec"]) == template_of(manifest()["spec"])


def test_unknown_storage_uri_and_format_are_support_problems() -> None:
    service = Service("sklearn-iris", "default")
    revision = service.apply(manifest("gs://nowhere/model")["spec"])
    assert revision is not None
    reason, message = support_problem(revision.model) or ("", "")
    assert reason == "ModelLoadFailed" and "gs://nowhere/model" in message
    doc = manifest()
    doc["spec"]["predictor"]["model"]["modelFormat"]["name"] = "xgboost"
    other = Service("x", "default").apply(doc["spec"])
    assert other is not None and (support_problem(other.model) or ("",))[0] == "NoSupportingRuntime"


# -- revisions and traffic ----------------------------------------------------------------

def test_create_canary_promote() -> None:
    service = Service("sklearn-iris", "default")
    apply(service, manifest())
    assert [r.name for r in service.revisions] == [REV1]
    assert service.traffic == [Target(REV1, 100, True)]
    assert service.latest_rolledout == REV1 and service.previous_rolledout == ""

    apply(service, manifest(MODEL_2, canary=10))
    assert [r.name for r in service.revisions] == [REV1, REV2]
    assert service.traffic == [Target(REV2, 10, True, "latest"), Target(REV1, 90, False, "prev")]
    assert service.latest_rolledout == REV1

    apply(service, manifest(MODEL_2))  # promote: drop canaryTrafficPercent
    assert len(service.revisions) == 2, "a traffic change is not a new revision"
    assert service.traffic == [Target(REV2, 100, True)]
    assert (service.latest_rolledout, service.previous_rolledout) == (REV2, REV1)


def test_promote_with_100_percent() -> None:
    service = Service("sklearn-iris", "default")
    apply(service, manifest())
    apply(service, manifest(MODEL_2, canary=10))
    apply(service, manifest(MODEL_2, canary=100))
    assert split(service) == {REV2: 100}
    assert service.traffic[0].tag == "latest"
    assert (service.latest_rolledout, service.previous_rolledout) == (REV2, REV1)


def test_canary_then_rollback() -> None:
    service = Service("sklearn-iris", "default")
    apply(service, manifest())
    apply(service, manifest(MODEL_2, canary=10))
    apply(service, manifest(MODEL_2, canary=0))
    assert service.traffic == [Target(REV2, 0, True, "latest"), Target(REV1, 100, False, "prev")]
    assert service.latest_rolledout == REV1


def test_rollback_after_promotion_pins_previous() -> None:
    service = Service("sklearn-iris", "default")
    apply(service, manifest())
    apply(service, manifest(MODEL_2, canary=10))
    apply(service, manifest(MODEL_2))
    apply(service, manifest(MODEL_2, canary=0))
    assert split(service) == {REV2: 0, REV1: 100}
    assert service.latest_rolledout == REV1


def test_changes_outside_the_predictor_template_make_no_revision() -> None:
    service = Service("sklearn-iris", "default")
    apply(service, manifest())
    doc = manifest()
    doc["metadata"]["labels"] = {"team": "ml"}
    apply(service, doc)
    apply(service, manifest(canary=50))
    assert [r.name for r in service.revisions] == [REV1]
    doc = manifest()
    doc["spec"]["predictor"]["minReplicas"] = 2
    apply(service, doc)
    assert [r.name for r in service.revisions] == [REV1, REV2]


def test_an_annotation_change_is_a_new_revision_that_keeps_its_faults() -> None:
    """As in KServe: the InferenceService's annotations are copied onto the revision."""
    service = Service("sklearn-iris", "default")
    apply(service, annotated({ADDED_LATENCY: "200"}))
    assert [(r.name, r.faults) for r in service.revisions] == [(REV1, Faults(200.0, 0.0))]
    # the same model, other faults, as a canary: revision 2; revision 1 keeps its own
    apply(service, annotated({ADDED_LATENCY: "200", ERROR_RATE: "0.2"}, canary=10))
    assert [(r.name, r.faults) for r in service.revisions] == [
        (REV1, Faults(200.0, 0.0)), (REV2, Faults(200.0, 0.2))]
    assert split(service) == {REV2: 10, REV1: 90}
    assert service.revisions[0].model == service.revisions[1].model
    # annotations KServe does not copy onto revisions, labels and traffic make none
    kubectl = annotated({ADDED_LATENCY: "200", ERROR_RATE: "0.2",
                         "kubectl.kubernetes.io/last-applied-configuration": "{}"}, canary=30)
    kubectl["metadata"]["labels"] = {"team": "ml"}
    apply(service, kubectl)
    assert len(service.revisions) == 2 and split(service) == {REV2: 30, REV1: 70}
    # any other annotation is part of the revision, as the faults are
    apply(service, annotated({ADDED_LATENCY: "200", ERROR_RATE: "0.2", "team": "ml"}, canary=30))
    apply(service, manifest(canary=30))  # back to no annotations: a fourth, without faults
    assert [r.faults for r in service.revisions] == [
        Faults(200.0, 0.0), Faults(200.0, 0.2), Faults(200.0, 0.2), Faults()]
    assert service.revisions[-1].name == "sklearn-iris-predictor-default-00004"


def test_predictor_annotations_override_the_services_as_kserve_merges_them() -> None:
    doc = annotated({ADDED_LATENCY: "200", ERROR_RATE: "0.5"})
    doc["spec"]["predictor"]["annotations"] = {ERROR_RATE: "0.1"}
    service = Service("sklearn-iris", "default")
    apply(service, doc)
    assert service.revisions[0].faults == Faults(200.0, 0.1)
    assert template_of(doc["spec"], doc["metadata"]["annotations"])["metadata"] == {
        "annotations": {ADDED_LATENCY: "200", ERROR_RATE: "0.5"}}


def test_canary_not_ready_gets_no_traffic_and_failed_canary_keeps_previous() -> None:
    service = Service("sklearn-iris", "default")
    apply(service, manifest())
    apply(service, manifest(MODEL_2, canary=10), ready=False)
    assert split(service) == {REV1: 100}
    conditions = conditions_of(service)
    assert conditions["Ready"].status == "Unknown"
    service.set_state(REV2, "Failed", "ModelLoadFailed", "boom")
    service.reconcile()
    assert split(service) == {REV1: 100}
    conditions = conditions_of(service)
    assert conditions["PredictorReady"].status == "False"
    assert conditions["PredictorReady"].reason == "ModelLoadFailed"
    assert "boom" in conditions["PredictorReady"].message
    assert service.wanted_running() == {REV1}
    # a fixed manifest makes revision 3, which then rolls out as a canary against revision 1
    apply(service, manifest(MODEL_2 + "", canary=20) | {"metadata": {"name": "sklearn-iris",
                                                                       "labels": {"a": "b"}}})
    assert [r.name for r in service.revisions] == [REV1, REV2]  # same template as revision 2
    doc = manifest(MODEL_2, canary=20)
    doc["spec"]["predictor"]["model"]["protocolVersion"] = "v2"
    apply(service, doc)
    assert split(service) == {REV3: 20, REV1: 80}


def test_first_revision_failing_leaves_no_traffic() -> None:
    service = Service("sklearn-iris", "default")
    apply(service, manifest("gs://nowhere"), ready=False)
    service.set_state(REV1, "Failed", "ModelLoadFailed", "no such model")
    service.reconcile()
    assert service.traffic == []
    status = status_doc(service, None, "2026-01-01T00:00:00Z")
    ready = {c["type"]: c for c in status["conditions"]}
    assert ready["Ready"]["status"] == "False"
    assert ready["PredictorReady"]["reason"] == "ModelLoadFailed"
    assert "url" not in status


def test_status_document_shape() -> None:
    service = Service("sklearn-iris", "default")
    apply(service, manifest())
    first = status_doc(service, None, "2026-01-01T00:00:00Z")
    apply(service, manifest(MODEL_2, canary=10))
    status = status_doc(service, first, "2026-01-01T00:01:00Z")
    assert status["url"] == "http://sklearn-iris.default.example.com"
    assert status["address"] == {"url": "http://sklearn-iris.default.svc.cluster.local"}
    predictor = status["components"]["predictor"]
    assert predictor["latestCreatedRevision"] == REV2
    assert predictor["latestReadyRevision"] == REV2
    assert predictor["latestRolledoutRevision"] == REV1
    assert "previousRolledoutRevision" not in predictor
    assert predictor["traffic"] == [
        {"latestRevision": True, "percent": 10, "revisionName": REV2, "tag": "latest",
         "url": "http://latest-sklearn-iris-predictor-default.default.example.com"},
        {"latestRevision": False, "percent": 90, "revisionName": REV1, "tag": "prev",
         "url": "http://prev-sklearn-iris-predictor-default.default.example.com"},
    ]
    types = [c["type"] for c in status["conditions"]]
    assert types == sorted(types)
    assert {"Ready", "PredictorReady", "IngressReady", "LatestDeploymentReady"} <= set(types)
    assert all(c["status"] == "True" for c in status["conditions"])
    # unchanged conditions keep their transition time
    assert all(c["lastTransitionTime"] == "2026-01-01T00:00:00Z" for c in status["conditions"])


def test_hosts_include_tag_hosts() -> None:
    service = Service("sklearn-iris", "default")
    apply(service, manifest())
    apply(service, manifest(MODEL_2, canary=10))
    hosts = service.hosts()
    assert hosts["sklearn-iris.default.example.com"] is None
    assert hosts["prev-sklearn-iris-predictor-default.default.example.com"] == "prev"
    assert hosts["latest-sklearn-iris-predictor-default.default.example.com"] == "latest"


def test_validate_does_not_modify() -> None:
    doc = manifest(MODEL_2, canary=10)
    before = copy.deepcopy(doc)
    validate_manifest(doc)
    assert doc == before

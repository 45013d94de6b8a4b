"""Drive one ModelVersion: verify the artifact in S3, register it in the MLflow
registry exactly once, and pass it through its validation gate.

The registry version is tagged with the ModelVersion's UID and found again by
it, so a restart between "created" and "status written" never registers twice.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from trailboss import metrics
from trailboss.api.modelversion import (
    ArtifactStatus,
    ModelPhase,
    ModelReason,
    ModelVersion,
)
from trailboss.clients.protocols import (
    OBJECT_TAG,
    UID_TAG,
    DataNotFound,
    RegistryVersion,
    StoreUnavailable,
    TrackingRejected,
    TrackingUnavailable,
)
from trailboss.policies import validation
from trailboss.policies.artifacts import model_dir_problem
from trailboss.reconcilers import modelversion_profile as profile
from trailboss.reconcilers.common import Services
from trailboss.reconcilers.driver import Driver, Ended
from trailboss.reconcilers.outcomes import Failed, Outcome, Verdict, Waiting, classify
from trailboss.reconcilers.turn import Turn

VALIDATED_ALIAS = "validated"
VALIDATION_TAG = "trailboss.dev/validation"
FINAL = frozenset({ModelPhase.VALIDATED, ModelPhase.REJECTED, ModelPhase.FAILED})
log = logging.getLogger(__name__)

Version = Turn[ModelVersion]


class ModelVersionKind:
    kind = "ModelVersion"
    model = ModelVersion
    failed_phase = str(ModelPhase.FAILED)
    phases = tuple(str(phase) for phase in ModelPhase)

    def settled(self, mv: ModelVersion) -> bool:
        if mv.status.phase == ModelPhase.VALIDATED:
            return not profile.pending(mv.spec, mv.status)
        return mv.status.phase in FINAL

    def advance(self, turn: Version) -> None:
        _advance(turn)

    def failed(self, turn: Version, outcome: Outcome) -> None:
        turn.status.phase = ModelPhase.FAILED
        _count(turn, ModelPhase.FAILED)


driver: Driver[ModelVersion] = Driver(ModelVersionKind(), base_delay=2.0)
_alias_lock = threading.Lock()
"""Moves of the `validated` alias, one at a time in this process (see _promote_alias)."""


def reconcile(body: dict[str, Any], svc: Services) -> Ended:
    """Bring one ModelVersion one step closer to Validated or Rejected."""
    return driver.reconcile(body, svc)


def _advance(turn: Version) -> None:
    turn.status.observed_generation = turn.generation
    if turn.status.phase is None:
        turn.status.phase = ModelPhase.PENDING
        namespace, model = turn.namespace, turn.obj.spec.model
        turn.after_write(lambda: metrics.first_seen_modelversion(namespace, model))
    if turn.status.phase not in FINAL:
        _register_and_gate(turn)
    if turn.status.phase == ModelPhase.VALIDATED:
        profile.ensure(turn)  # only a version that can be served is watched for drift


def _register_and_gate(turn: Version) -> None:
    try:
        location = _resolve(turn)
        _verify(turn, location)
        _read_metrics(turn)
        version = _register(turn, location)
        _gate(turn, version)
    except TrackingUnavailable as error:
        raise Waiting(
            ModelReason.REGISTRY_UNAVAILABLE,
            f"MLflow at {turn.svc.tracking.uri} is unreachable: {error} (retrying)",
        ) from error
    except TrackingRejected as error:
        outcome = classify(error)
        if outcome is not None and outcome.verdict == Verdict.WAIT:
            raise Waiting(outcome.reason, outcome.message) from error
        message = f"MLflow refused the request: {error}"
        raise Failed(ModelReason.REGISTRATION_FAILED, message) from error


def _resolve(turn: Version) -> str:
    """The S3 location of the model directory; ``runs:/`` goes through MLflow."""
    uri = turn.obj.spec.artifact_uri
    if uri.startswith("s3://"):
        return uri.rstrip("/")
    run_id, _, path = uri[len("runs:/") :].partition("/")
    root = turn.svc.tracking.artifact_uri_of_run(run_id)
    if not root.startswith("s3://"):
        raise Failed(
            ModelReason.ARTIFACT_NOT_FOUND,
            f"spec.artifactUri: run {run_id} stores artifacts at {root}; only S3 artifact "
            "stores can be verified: use an s3:// artifactUri",
        )
    return f"{root.rstrip('/')}/{path.strip('/')}" if path else root.rstrip("/")


def _verify(turn: Version, location: str) -> None:
    if turn.status.artifact and turn.status.artifact.uri == location:
        return
    try:
        listing = turn.svc.storage.list(location)
        problem = model_dir_problem(location, listing.keys)
        if problem:
            raise DataNotFound(problem)
    except DataNotFound as error:
        raise Waiting(
            ModelReason.ARTIFACT_NOT_FOUND,
            f"spec.artifactUri: {error}; waiting for it to appear (retrying)",
        ) from error
    except StoreUnavailable as error:
        outcome = classify(error)
        if outcome is not None and outcome.verdict == Verdict.FAIL:
            raise Failed(outcome.reason, f"spec.artifactUri: {outcome.message}") from error
        raise Waiting("DataStoreUnavailable", f"S3: {error} (retrying)") from error
    turn.status.artifact = ArtifactStatus(
        uri=location,
        size_bytes=listing.size_bytes,
        objects=listing.objects,
        digest=listing.digest,
        verified_at=turn.svc.clock(),
    )
    turn.event(
        ModelReason.ARTIFACT_VERIFIED, f"{location}: {listing.objects} files, {listing.digest}"
    )


def _run_id(turn: Version) -> str | None:
    spec = turn.obj.spec
    if spec.source and spec.source.mlflow_run_id:
        return spec.source.mlflow_run_id
    if spec.artifact_uri.startswith("runs:/"):
        return spec.artifact_uri[len("runs:/") :].split("/", 1)[0]
    return None


def _read_metrics(turn: Version) -> None:
    if turn.status.metrics:
        return
    if turn.obj.spec.metrics:
        turn.status.metrics = dict(turn.obj.spec.metrics)
        return
    run_id = _run_id(turn)
    if run_id:
        turn.status.metrics = turn.svc.tracking.get_run(run_id).metrics


def _lineage_tags(turn: Version) -> dict[str, str]:
    spec, meta = turn.obj.spec, turn.meta
    tags = {UID_TAG: meta["uid"], OBJECT_TAG: f"{meta['namespace']}/{meta['name']}"}
    if spec.source:
        for key, value in (
            ("trailboss.dev/trainingrun", spec.source.training_run),
            ("trailboss.dev/image", spec.source.image),
            ("trailboss.dev/dataset", spec.source.dataset),
        ):
            if value:
                tags[key] = value
    if turn.status.artifact and turn.status.artifact.digest:
        tags["trailboss.dev/artifact-digest"] = turn.status.artifact.digest
    return tags


def _register(turn: Version, location: str) -> RegistryVersion:
    """Find the version tagged with this object's UID, or create it once."""
    tracking, name, uid = turn.svc.tracking, turn.obj.spec.model, turn.meta["uid"]
    version = None
    if turn.status.registry_version:
        version = tracking.get_version(name, turn.status.registry_version)
    if version is None:
        version = tracking.find_version(name, uid)
    if version is None:
        tracking.ensure_registered_model(name)
        version = tracking.create_version(name, location, _run_id(turn), _lineage_tags(turn))
        turn.event(ModelReason.REGISTERING, f"registering {name} version {version.version}")
    turn.status.registered_model = name
    turn.status.registry_version = version.version
    turn.status.model_uri = f"models:/{name}/{version.version}"
    if version.status == "FAILED_REGISTRATION":
        raise Failed(ModelReason.REGISTRATION_FAILED, f"MLflow could not register {location}")
    if version.status != "READY":
        raise Waiting(ModelReason.REGISTERING, f"waiting for MLflow: version is {version.status}")
    return version


def _gate(turn: Version, version: RegistryVersion) -> None:
    result = validation.evaluate(turn.obj.spec.validation, turn.status.metrics)
    turn.status.validation = result
    tracking, name = turn.svc.tracking, turn.obj.spec.model
    tracking.tag_version(
        name,
        version.version,
        {
            VALIDATION_TAG: "passed" if result.passed else "failed",
            "trailboss.dev/validation-message": result.message or "",
        },
    )
    if result.passed:
        _promote_alias(turn)
        phase, reason = ModelPhase.VALIDATED, ModelReason.VALIDATED
    else:
        phase, reason = ModelPhase.REJECTED, ModelReason.GATE_FAILED
    message = f"{turn.status.model_uri}: {result.message}"
    turn.status.phase = phase
    turn.set_ready(bool(result.passed), reason, message)
    turn.event(reason, message, warning=not result.passed)
    _count(turn, phase)


def _count(turn: Version, phase: ModelPhase) -> None:
    labels = (turn.namespace, turn.obj.spec.model, str(phase))
    turn.after_write(lambda: metrics.MODEL_VERSIONS.labels(*labels).inc())


def _promote_alias(turn: Version) -> None:
    """Point the ``validated`` alias at the highest version whose gate passed.

    Level-based: the target is read from the registry's tags, not from this
    version, so whatever order two validations finish in, the later move sees
    both tags and the alias ends on the highest. Moves are serialised in this
    process (one active operator per namespace set, by peering)."""
    tracking, name = turn.svc.tracking, turn.obj.spec.model
    with _alias_lock:
        passed = tracking.versions_tagged(name, VALIDATION_TAG, "passed")
        if not passed:
            return
        target = str(max(int(v) for v in passed))
        if tracking.alias_version(name, VALIDATED_ALIAS) != target:
            tracking.set_alias(name, VALIDATED_ALIAS, target)


def reconcile_latest(namespace: str, name: str, uid: str, svc: Services) -> Ended:
    return driver.reconcile_latest(namespace, name, uid, svc)


def forget(uid: str) -> None:
    driver.forget(uid)

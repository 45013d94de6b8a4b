"""Property-based tests: specs generated from the API's own JSON Schema, kept
when the models accept them, then run through every builder and policy. None
may raise, and what they build must itself be valid where it has a schema."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.strategies import from_model as valid
from trailboss.api.common import ValidationGate
from trailboss.api.deployment import DeploymentSpec
from trailboss.api.fields import DNS_1035_LABEL, LABEL_VALUE
from trailboss.api.modelversion import ModelVersion, ModelVersionSpec
from trailboss.api.trainingrun import (
    TRAINING_RUN_NAME_LIMIT,
    DatasetPin,
    MlflowRunStatus,
    RegisterSpec,
    TrainingRunSpec,
    TrainingRunStatus,
)
from trailboss.builders.podsecurity import container_security_context, pod_security_context
from trailboss.builders.registration import build_model_version
from trailboss.builders.training import (
    Owner,
    TrainingContext,
    build_job,
    build_worker_service,
    job_name,
    labels,
    service_name,
)
from trailboss.policies.training import (
    JobObservation,
    observe_job,
    pod_failure,
    pods_rejected,
    progress,
)
from trailboss.policies.validation import evaluate

PROPERTIES = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


owners = st.builds(
    Owner,
    name=st.from_regex(DNS_1035_LABEL, fullmatch=True).filter(
        lambda n: len(n) <= TRAINING_RUN_NAME_LIMIT
    ),
    namespace=st.from_regex(r"^[a-z]([-a-z0-9]{0,20}[a-z0-9])?$", fullmatch=True),
    uid=st.uuids().map(str),
)
pins = st.none() | st.builds(
    DatasetPin,
    uri=st.just("s3://datasets/churn.csv"),
    etag=st.none() | st.text("0123456789abcdef", min_size=32, max_size=32),
    version_id=st.none() | st.text("abcdefXYZ0123456789", min_size=1, max_size=32),
)
contexts = st.builds(
    TrainingContext,
    tracking_uri=st.just("http://mlflow:5000"),
    run_id=st.text("0123456789abcdef", min_size=32, max_size=32),
    experiment_id=st.integers(0, 10**6).map(str),
    dataset=pins,
    s3_endpoint_url=st.none() | st.just("http://minio:9000"),
    credentials_secret=st.none() | st.just("trailboss-s3"),
)
metric_values = st.floats(allow_nan=False, allow_infinity=False, width=32)
metrics = st.dictionaries(
    st.from_regex(r"^[a-z_]{1,20}$", fullmatch=True), metric_values, max_size=10
)


def _is_label_value(value: str) -> bool:
    return len(value) <= 63 and re.fullmatch(LABEL_VALUE, value) is not None


@PROPERTIES
@given(spec=valid(TrainingRunSpec), owner=owners, ctx=contexts)
def test_every_valid_training_spec_builds_a_job_with_valid_names(
    spec: TrainingRunSpec, owner: Owner, ctx: TrainingContext
) -> None:
    job = build_job(owner, spec, ctx)
    assert job["metadata"]["name"] == job_name(owner)
    assert len(job_name(owner)) <= 52
    assert re.fullmatch(DNS_1035_LABEL, job_name(owner))
    assert len(service_name(owner)) <= 63
    assert re.fullmatch(DNS_1035_LABEL, service_name(owner))
    assert all(_is_label_value(v) for v in labels(owner, spec).values())
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"].get("runAsNonRoot") is (
        None if spec.security_context and spec.security_context.run_as_root else True
    )
    names = [e["name"] for e in pod["containers"][0]["env"]]
    assert len(names) == len(set(names)) or spec.env  # only the user's variables may repeat
    if spec.workers > 1:
        assert build_worker_service(owner, spec)["metadata"]["name"] == pod["subdomain"]
    pod_security_context(spec.security_context)
    container_security_context(spec.security_context)


@PROPERTIES
@given(
    spec=valid(TrainingRunSpec),
    registration=valid(RegisterSpec),
    owner=owners,
    run_metrics=metrics,
    pin=pins,
)
def test_the_model_version_a_run_registers_is_itself_valid(
    spec: TrainingRunSpec,
    registration: RegisterSpec,
    owner: Owner,
    run_metrics: dict[str, float],
    pin: DatasetPin | None,
) -> None:
    registering = spec.model_copy(update={"registration": registration})
    status = TrainingRunStatus(
        mlflow=MlflowRunStatus(run_id="0d5b465e3d424b6fb794200aaed972a9"),
        metrics=run_metrics,
        dataset=pin,
    )
    manifest = build_model_version(owner, registering, status)
    ModelVersion.model_validate(manifest)


@PROPERTIES
@given(gate=valid(ValidationGate), values=metrics)
def test_the_gate_decides_every_metric_set(gate: ValidationGate, values: dict[str, float]) -> None:
    verdict = evaluate(gate, values)
    assert verdict.passed is not None
    assert len(verdict.checks) == len(gate.minimums) + len(gate.maximums)


@PROPERTIES
@given(spec=valid(ModelVersionSpec))
def test_model_version_specs_round_trip(spec: ModelVersionSpec) -> None:
    assert ModelVersionSpec.model_validate(spec.to_json()) == spec
    evaluate(spec.validation, spec.metrics)


@PROPERTIES
@given(spec=valid(DeploymentSpec))
def test_deployment_specs_round_trip(spec: DeploymentSpec) -> None:
    assert DeploymentSpec.model_validate(spec.to_json()) == spec


counts = st.integers(0, 1000)
conditions = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["Complete", "Failed", "Suspended", "FailureTarget"]),
            "status": st.sampled_from(["True", "False", "Unknown"]),
        },
        optional={
            "reason": st.sampled_from(
                ["BackoffLimitExceeded", "DeadlineExceeded", "PodFailurePolicy"]
            ),
            "message": st.text(max_size=200),
        },
    ),
    max_size=4,
)
jobs = st.fixed_dictionaries(
    {"spec": st.fixed_dictionaries({}, optional={"suspend": st.booleans()})},
    optional={
        "status": st.fixed_dictionaries(
            {},
            optional={
                "active": counts,
                "ready": counts,
                "succeeded": counts,
                "failed": counts,
                "conditions": conditions,
                "startTime": st.just("2026-11-23T10:00:00Z"),
                "completionTime": st.just("2026-11-23T10:05:00Z"),
            },
        )
    },
)
terminated = st.fixed_dictionaries(
    {"exitCode": st.integers(-1, 255)},
    optional={
        "reason": st.text(max_size=20),
        "message": st.text(max_size=2000),
        "finishedAt": st.just("2026-11-23T10:05:00Z"),
    },
)
pods = st.lists(
    st.fixed_dictionaries(
        {
            "status": st.fixed_dictionaries(
                {
                    "containerStatuses": st.lists(
                        st.fixed_dictionaries(
                            {
                                "state": st.fixed_dictionaries(
                                    {}, optional={"terminated": terminated}
                                )
                            }
                        ),
                        max_size=2,
                    )
                }
            )
        }
    ),
    max_size=3,
)
events = st.lists(
    st.fixed_dictionaries(
        {"reason": st.sampled_from(["FailedCreate", "SuccessfulCreate", "Completed"])},
        optional={
            "message": st.text(max_size=300) | st.just('Error creating: pods "p" is forbidden: x'),
            "lastTimestamp": st.just("2026-11-23T10:00:00Z"),
        },
    ),
    max_size=4,
)


@PROPERTIES
@given(job=jobs, job_pods=pods, job_events=events)
def test_every_job_state_gives_a_phase(
    job: dict[str, Any], job_pods: list[dict[str, Any]], job_events: list[dict[str, Any]]
) -> None:
    observed = observe_job(job)
    assert isinstance(observed, JobObservation)
    verdict = progress(observed, pod_failure(job_pods, observed))
    assert verdict.reason
    assert verdict.message
    rejected = pods_rejected(observed, job_events)
    if rejected is not None:
        assert not observed.active
        assert not observed.complete

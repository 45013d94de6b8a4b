"""The local stack's pure decisions: which S3 server runs, and where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from e2e.stack.localstack.bootstrap import choose_s3_backend
from e2e.stack.localstack.pods import netns
from e2e.stack.localstack.pods.netns import allocate_ip, veth_name
from e2e.stack.localstack.pods.probes import ProbeState, parse_probe
from e2e.stack.localstack.pods.restarts import (
    backoff_seconds,
    exit_code,
    should_restart,
)
from e2e.stack.localstack.pods.runner import CLAIMED, Runner, serves
from e2e.stack.localstack.pods.status import ContainerReport, running_status
from e2e.stack.localstack.settings import StackError


@pytest.mark.parametrize(
    ("requested", "has_minio", "has_moto", "in_ci", "expected"),
    [
        ("auto", True, True, False, "minio"),
        ("auto", False, True, False, "moto"),
        ("moto", True, True, False, "moto"),
        ("minio", True, False, False, "minio"),
        ("auto", True, True, True, "minio"),
        ("minio", True, True, True, "minio"),
    ],
)
def test_s3_backend_choice(
    requested: str, has_minio: bool, has_moto: bool, in_ci: bool, expected: str
) -> None:
    assert choose_s3_backend(requested, has_minio, has_moto, in_ci) == expected


@pytest.mark.parametrize(
    ("requested", "has_minio", "has_moto", "in_ci", "message"),
    [
        ("moto", True, True, True, "moto refused under CI=true"),
        ("auto", False, True, True, "minio required under CI=true"),
        ("minio", False, True, False, "minio requested"),
        ("moto", True, False, False, "moto is not installed"),
        ("auto", False, False, False, "no S3 server"),
        ("s3", True, True, False, "'s3' unknown (--s3 or TRAILBOSS_S3_BACKEND)"),
    ],
)
def test_s3_backend_refusals_name_the_fix(
    requested: str, has_minio: bool, has_moto: bool, in_ci: bool, message: str
) -> None:
    with pytest.raises(StackError, match=message.replace("(", r"\(").replace(")", r"\)")):
        choose_s3_backend(requested, has_minio, has_moto, in_ci)


# --------------------------------------------------------------------------- pod runner

CONTAINER = {"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}


def test_probe_defaults_and_named_port() -> None:
    spec = parse_probe({"httpGet": {"path": "/ready", "port": "http"}}, CONTAINER, "readinessProbe")
    assert spec is not None
    assert (spec.port, spec.path, spec.period, spec.timeout) == (8080, "/ready", 10.0, 1.0)
    assert (spec.success_threshold, spec.failure_threshold) == (1, 3)


@pytest.mark.parametrize(
    ("probe", "message"),
    [
        ({"exec": {"command": ["true"]}}, "only httpGet and tcpSocket probes"),
        ({"httpGet": {"port": "metrics"}}, "readinessProbe.httpGet.port: no container port"),
    ],
)
def test_probe_errors_name_the_field(probe: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_probe(probe, CONTAINER, "readinessProbe")


def test_readiness_flips_after_thresholds_only() -> None:
    spec = parse_probe(
        {
            "tcpSocket": {"port": 8080},
            "periodSeconds": 1,
            "failureThreshold": 2,
            "successThreshold": 2,
        },
        CONTAINER,
        "readinessProbe",
    )
    assert spec is not None
    state = ProbeState.begin(spec, started=100.0, initial=False)
    assert state.due(100.0)
    assert [state.record(ok, "", t) for t, ok in enumerate([True, True, False, False], 101)] == [
        False,
        True,
        False,
        True,
    ]
    assert state.result is False
    assert not state.due(104.5)
    assert state.due(105.0)


@pytest.mark.parametrize(
    ("policy", "code", "restart"),
    [
        ("Always", 0, True),
        ("Always", 1, True),
        ("OnFailure", 0, False),
        ("OnFailure", 2, True),
        ("Never", 1, False),
    ],
)
def test_restart_policy(policy: str, code: int, restart: bool) -> None:
    assert should_restart(policy, code) is restart


def test_crash_loop_backoff_doubles_to_five_minutes() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3, 4, 7, 20)] == [0, 10, 20, 40, 300, 300]
    assert (exit_code(-9), exit_code(-15), exit_code(3)) == (137, 143, 3)


def test_serving_pods_get_a_network_namespace() -> None:
    def pod(container: dict[str, Any], host: bool = False) -> dict[str, Any]:
        return {"spec": {"containers": [container], "hostNetwork": host}}

    assert serves(pod(CONTAINER))
    assert serves(pod({"name": "p", "readinessProbe": {"tcpSocket": {"port": 1}}}))
    assert not serves(pod({"name": "train"}))
    assert not serves(pod(CONTAINER, host=True))


def test_pod_addresses_come_from_the_runner_range() -> None:
    assert allocate_ip(set()) == "10.244.128.2"
    assert allocate_ip({"10.244.128.2", "10.244.128.3"}) == "10.244.128.4"
    assert allocate_ip(set(), after="10.244.128.2") == "10.244.128.3"  # no quick reuse
    assert allocate_ip({"10.244.128.2"}, after="10.244.255.254") == "10.244.128.3"  # wraps
    assert len(veth_name("1b4e28ba-2fa1-11d2-883f-0016d3cca427")) <= 15


def test_ready_condition_follows_the_container() -> None:
    pod = {"spec": {"containers": [{"name": "app"}]}}
    report = ContainerReport({"running": {"startedAt": "t0"}}, ready=False, restart_count=2)
    status = running_status(pod, "10.244.128.5", "t0", report, "t1")["status"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Ready"] == conditions["ContainersReady"] == "False"
    assert status["podIP"] == "10.244.128.5"
    assert status["containerStatuses"][0]["restartCount"] == 2


class RecordingKube:
    """The runner's API calls, recorded; the pods it lists are set by the test."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.listed = pods
        self.calls: list[tuple[str, str, object]] = []

    def fake_nodes(self) -> set[str]:
        return {"kwok-node-0"}

    def pods(self) -> list[dict[str, Any]]:
        return self.listed

    def patch(self, pod: dict[str, Any], body: object, subresource: str = "") -> None:
        self.calls.append(("patch" + subresource, pod["metadata"]["name"], body))

    def delete_now(self, pod: dict[str, Any]) -> None:
        self.calls.append(("delete", pod["metadata"]["name"], None))


def training_pod(**meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "train-0", "namespace": "ns", "uid": "u-1", **meta},
        "spec": {
            "nodeName": "kwok-node-0",
            "restartPolicy": "Never",
            "containers": [{"name": "train", "command": ["sleep", "30"]}],
        },
        "status": {"phase": "Pending"},
    }


def phases_written(kube: RecordingKube) -> list[str]:
    return [
        body["status"]["phase"]  # type: ignore[index]
        for call, _, body in kube.calls
        if call == "patch/status"
    ]


def test_a_running_pod_deleted_is_reported_failed_before_it_goes(tmp_path: Path) -> None:
    """The Job controller frees a pod's tracking finalizer only once the pod is
    finished; a pod deleted while it runs must say so, or its namespace never goes."""
    pod = training_pod()
    kube = RecordingKube([pod])
    runner = Runner(kube, tmp_path, pod_network=False)  # type: ignore[arg-type]
    runner.sync()
    assert phases_written(kube) == ["Running"]
    pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    runner.sync()
    assert phases_written(kube) == ["Running", "Failed"]
    assert kube.calls[-1][0] == "delete"
    assert not runner.containers


def test_a_deleted_pod_left_running_by_an_earlier_runner_is_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(netns, "delete", lambda uid: None)
    pod = training_pod(
        annotations={CLAIMED: "2026-01-01T00:00:00Z"}, deletionTimestamp="2026-01-01T00:01:00Z"
    )
    pod["status"] = {"phase": "Running", "startTime": "2026-01-01T00:00:00Z"}
    kube = RecordingKube([pod])
    Runner(kube, tmp_path, pod_network=False).sync()  # type: ignore[arg-type]
    assert phases_written(kube) == ["Failed"]
    assert [c[0] for c in kube.calls] == ["patch/status", "delete"]

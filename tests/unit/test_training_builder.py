"""The Job a TrainingRun becomes, as ``kubectl get job -o yaml`` would show it."""

from __future__ import annotations

from typing import Any

from tests.unit.factories import OWNER, context, training_spec
from trailboss.api.trainingrun import DatasetPin
from trailboss.builders import training
from trailboss.builders.names import child_name


def _env(job: dict[str, Any]) -> dict[str, Any]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_child_names_are_deterministic_bounded_and_uid_scoped() -> None:
    long = "a" * 80
    name = child_name(long, "train", "uid-1")
    assert len(name) <= 63
    assert name == child_name(long, "train", "uid-1")
    assert name != child_name(long, "train", "uid-2")
    assert child_name("churn", "train", "u").startswith("churn-train-")


def test_job_is_owned_labelled_and_passes_the_spec_through() -> None:
    spec = training_spec(
        backoffLimit=2,
        activeDeadlineSeconds=600,
        ttlSecondsAfterFinished=60,
        nodeSelector={"pool": "gpu"},
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        serviceAccountName="trainer",
        gpus=2,
        resources={"requests": {"cpu": "2", "memory": "4Gi"}},
        args=["--fast"],
    )
    job = training.build_job(OWNER, spec, context())
    meta, job_spec = job["metadata"], job["spec"]
    assert meta["name"] == training.job_name(OWNER)
    assert len(meta["name"]) <= training.JOB_NAME_LIMIT
    assert meta["ownerReferences"][0]["uid"] == OWNER.uid
    assert meta["ownerReferences"][0]["controller"] is True
    assert meta["labels"]["trailboss.dev/trainingrun"] == OWNER.name
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "trailboss"
    assert (job_spec["backoffLimit"], job_spec["activeDeadlineSeconds"]) == (2, 600)
    assert job_spec["ttlSecondsAfterFinished"] == 60
    assert job_spec["suspend"] is False
    assert "completionMode" not in job_spec
    pod = job_spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert pod["serviceAccountName"] == "trainer"
    container = pod["containers"][0]
    assert container["command"] == ["python", "t.py"]
    assert container["args"] == ["--fast"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}


def test_container_gets_what_it_needs_to_report() -> None:
    pin = DatasetPin(uri="s3://datasets/churn.csv", etag="e7a1")
    versioned = DatasetPin(uri="s3://datasets/churn.csv", etag="e7a1", version_id="v3")
    versioned_env = _env(training.build_job(OWNER, training_spec(), context(dataset=versioned)))
    assert versioned_env["TRAILBOSS_DATASET_VERSION"] == "v3"
    assert versioned_env["TRAILBOSS_DATASET_VERSION_ID"] == "v3"
    spec = training_spec(hyperparameters={"n_estimators": "100", "learning-rate": "0.1"})
    env = _env(
        training.build_job(
            OWNER,
            spec,
            context(dataset=pin, s3_endpoint_url="http://s3:9000", credentials_secret="s3-creds"),
        )
    )
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["MLFLOW_RUN_ID"] == "abc123"
    assert env["MLFLOW_EXPERIMENT_ID"] == "7"
    assert env["HP_N_ESTIMATORS"] == "100"
    assert env["HP_LEARNING_RATE"] == "0.1"
    assert env["TRAILBOSS_HYPERPARAMETERS"] == '{"learning-rate": "0.1", "n_estimators": "100"}'
    assert env["TRAILBOSS_DATASET_URI"] == "s3://datasets/churn.csv"
    assert env["TRAILBOSS_DATASET_VERSION"] == "e7a1"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://s3:9000"
    assert env["AWS_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": "s3-creds", "key": "AWS_ACCESS_KEY_ID"}
    }


def test_the_runs_own_secret_wins_and_user_env_comes_last() -> None:
    spec = training_spec(
        s3CredentialsSecret="team-s3", env=[{"name": "MLFLOW_RUN_ID", "value": "override"}]
    )
    job = training.build_job(OWNER, spec, context(credentials_secret="default-s3"))
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[-1] == {"name": "MLFLOW_RUN_ID", "value": "override"}
    assert _env(job)["AWS_SECRET_ACCESS_KEY"]["secretKeyRef"]["name"] == "team-s3"


def test_distributed_run_is_an_indexed_job_with_rendezvous_env_and_headless_service() -> None:
    spec = training_spec(workers=4)
    job = training.build_job(OWNER, spec, context())
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 4
    pod = job["spec"]["template"]["spec"]
    service = training.build_worker_service(OWNER, spec)
    assert pod["subdomain"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"trailboss.dev/trainingrun": OWNER.name}
    env = _env(job)
    assert env["MASTER_ADDR"] == f"{job['metadata']['name']}-0.{service['metadata']['name']}"
    assert env["MASTER_PORT"] == "29500"
    assert env["WORLD_SIZE"] == "4"
    assert env["RANK"] == {"fieldRef": {"fieldPath": training.COMPLETION_INDEX}}


def test_extra_pod_labels_reach_the_pods_but_not_the_job() -> None:
    job = training.build_job(
        OWNER, training_spec(), context(pod_labels={"trailboss.dev/run-locally": "true"})
    )
    assert job["spec"]["template"]["metadata"]["labels"]["trailboss.dev/run-locally"] == "true"
    assert "trailboss.dev/run-locally" not in job["metadata"]["labels"]


GPUS = {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["A100", "H100"]}
ONE_PER_NODE = {
    "labelSelector": {"matchLabels": {"trailboss.dev/trainingrun": OWNER.name}},
    "topologyKey": "kubernetes.io/hostname",
}
POD_TEMPLATE: dict[str, Any] = {
    "metadata": {
        "labels": {"kueue.x-k8s.io/queue-name": "team-a", "team": "fraud"},
        "annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
    },
    "shmSize": "8Gi",
    "volumes": [
        {"name": "cache", "persistentVolumeClaim": {"claimName": "fraud-cache"}},
        {"name": "config", "configMap": {"name": "trainer-config", "defaultMode": 0o440}},
        {"name": "scratch", "emptyDir": {}},
    ],
    "volumeMounts": [
        {"name": "cache", "mountPath": "/data/cache"},
        {"name": "config", "mountPath": "/etc/trainer", "readOnly": True},
        {"name": "scratch", "mountPath": "/scratch", "subPath": "run"},
    ],
    "imagePullSecrets": [{"name": "registry-credentials"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [GPUS]}]
            }
        },
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [ONE_PER_NODE]},
    },
    "priorityClassName": "training-high",
    "schedulerName": "volcano",
}


def _pod_of(**fields: Any) -> dict[str, Any]:
    pod: dict[str, Any] = training.build_job(OWNER, training_spec(**fields), context())["spec"][
        "template"
    ]["spec"]
    return pod


def test_the_pod_template_adds_volumes_mounts_and_scheduling_to_the_pods() -> None:
    pod = _pod_of(podTemplate=POD_TEMPLATE)
    assert pod["volumes"] == [
        {"name": "cache", "persistentVolumeClaim": {"claimName": "fraud-cache"}},
        {"name": "config", "configMap": {"name": "trainer-config", "defaultMode": 0o440}},
        {"name": "scratch", "emptyDir": {}},
        {"name": "trailboss-shm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}},
    ]
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "cache", "mountPath": "/data/cache"},
        {"name": "config", "mountPath": "/etc/trainer", "readOnly": True},
        {"name": "scratch", "mountPath": "/scratch", "subPath": "run"},
        {"name": "trailboss-shm", "mountPath": "/dev/shm"},
    ]
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert pod["affinity"] == POD_TEMPLATE["affinity"]
    assert (pod["priorityClassName"], pod["schedulerName"]) == ("training-high", "volcano")


def test_without_a_pod_template_the_pods_are_as_before() -> None:
    pod = _pod_of()
    absent = {"volumes", "imagePullSecrets", "affinity", "priorityClassName", "schedulerName"}
    assert absent.isdisjoint(pod)
    assert "volumeMounts" not in pod["containers"][0]


def test_shm_size_alone_mounts_an_in_memory_dev_shm() -> None:
    pod = _pod_of(podTemplate={"shmSize": "2Gi"})
    assert pod["volumes"] == [
        {"name": "trailboss-shm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}
    ]
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "trailboss-shm", "mountPath": "/dev/shm"}
    ]


def test_template_labels_join_the_operators_without_replacing_them() -> None:
    template = {"metadata": {"labels": {"team": "fraud", "trailboss-dev-like": "x"}}}
    settings_labels = {"team": "platform", "trailboss.dev/run-locally": "true"}
    job = training.build_job(
        OWNER, training_spec(podTemplate=template), context(pod_labels=settings_labels)
    )
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["team"] == "platform"  # the operator's configured labels win a clash
    assert pod_labels["trailboss-dev-like"] == "x"
    assert pod_labels["trailboss.dev/trainingrun"] == OWNER.name
    assert pod_labels["app.kubernetes.io/managed-by"] == "trailboss"
    assert job["metadata"]["labels"]["trailboss-dev-like"] == "x"
    assert job["metadata"]["labels"]["trailboss.dev/trainingrun"] == OWNER.name


def test_annotations_reach_the_pods() -> None:
    job = training.build_job(OWNER, training_spec(podTemplate=POD_TEMPLATE), context())
    assert job["spec"]["template"]["metadata"]["annotations"] == {
        "cluster-autoscaler.kubernetes.io/safe-to-evict": "false"
    }
    assert (
        "annotations"
        not in training.build_job(OWNER, training_spec(), context())["spec"]["template"]["metadata"]
    )


def test_a_run_in_a_kueue_queue_is_created_suspended_with_the_queue_on_its_job() -> None:
    queued = training.build_job(OWNER, training_spec(podTemplate=POD_TEMPLATE), context())
    assert queued["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert queued["spec"]["suspend"] is True  # Kueue resumes it once it admits it
    assert training.build_job(OWNER, training_spec(), context())["spec"]["suspend"] is False

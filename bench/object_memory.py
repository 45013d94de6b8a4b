"""What the operator keeps in memory per object, part by part, in this process
(tracemalloc; no cluster): kopf's record of an object, the driver's lock, the
phase gauge's entry, and a finished TrainingRun's body as kopf keeps it for a
kind that has a timer. The parts docs/scaling.md adds up; the operator's real
growth per object comes from ``make bench-scale``.

    .venv/bin/python -m bench.object_memory
"""

from __future__ import annotations

import asyncio
import json
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

from kopf._core.reactor.inventory import ResourceMemories

from bench.scale import DIFF_BASE, FINALIZER, finished_status, manifest
from trailboss import metrics
from trailboss.builders import training
from trailboss.reconcilers.common import ObjectLocks

COUNT = 5000


def retained(build: Callable[[], object]) -> float:
    """Bytes per object that ``build`` leaves allocated (it makes COUNT of them)."""
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    kept = build()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    del kept
    return sum(s.size_diff for s in after.compare_to(before, "filename")) / COUNT


def finished_run(namespace: str, index: int) -> dict[str, Any]:
    """A finished run as the API server returns it after kopf adopted it."""
    body = manifest(namespace, f"run-{index:06d}")
    uid = str(uuid.uuid4())
    body["status"] = finished_status(
        training.Owner(body["metadata"]["name"], namespace, uid), 1, "http://mlflow:5000"
    )
    managed: list[dict[str, Any]] = [
        {"manager": manager, "operation": "Update", "apiVersion": "trailboss.dev/v1alpha1",
         "time": "2026-12-01T10:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields}
        for manager, fields in (
            ("client", {"f:spec": {f"f:{k}": {} for k in body["spec"]}}),
            ("trailboss", {"f:status": {f"f:{k}": {} for k in body["status"]}}),
            ("kopf", {"f:metadata": {"f:annotations": {f"f:{DIFF_BASE}": {}},
                                     "f:finalizers": {f'v:"{FINALIZER}"': {}}}}),
        )
    ]  # fmt: skip
    body["metadata"].update(
        uid=uid,
        resourceVersion="123456",
        generation=1,
        creationTimestamp="2026-12-01T10:00:00Z",
        finalizers=[FINALIZER],
        annotations={DIFF_BASE: json.dumps({"spec": body["spec"]})},
        managedFields=managed,
    )
    return body


def main() -> int:
    uids = [str(uuid.uuid4()) for _ in range(COUNT)]

    def kopf_records() -> object:
        memories = ResourceMemories()

        async def recall() -> None:
            for uid in uids:
                await memories.recall({"metadata": {"uid": uid}}, noticed_by_listing=True)

        asyncio.run(recall())
        return memories

    def locks() -> object:
        held = ObjectLocks()
        for uid in uids:
            with held(uid):
                pass
        return held

    def phases() -> object:
        counts = metrics.PhaseCounts(metrics.OBJECTS)
        group, phases = ("TrainingRun", "bench-memory", "scale"), ("Pending", "Succeeded")
        for uid in uids:
            counts.observe(uid, group, "Succeeded", phases)
        return counts

    texts = [json.dumps(finished_run("scale-0a1b2c", i)) for i in range(COUNT)]

    def bodies() -> object:
        return [json.loads(text) for text in texts]

    json_bytes = sum(map(len, texts)) / COUNT
    parts = {
        "kopf's record of an object": retained(kopf_records),
        "the driver's lock": retained(locks),
        "the phase gauge's entry": retained(phases),
        "a finished run's body, parsed": retained(bodies),
    }
    print(f"per object, {COUNT} objects, bytes retained (tracemalloc):")
    for name, size in parts.items():
        print(f"  {name:<32} {size:8.0f}")
    print(f"  (the run as JSON: {json_bytes:.0f} bytes)")
    print(json.dumps({"json_bytes": json_bytes, **parts}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

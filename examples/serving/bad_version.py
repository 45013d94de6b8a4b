"""FOR ROLLOUT TESTS AND DEMOS ONLY: make a deliberately bad version of a model.

Wraps a real MLflow model so that, when served by ``trailboss serve``, a share
of requests fails (HTTP 500) and/or every request takes longer. Register the
result as a new ModelVersion and roll it out: the canary analysis should reject
it and traffic should return to the stable version. The server warns at start
and exports ``trailboss_model_fault_injection 1`` while it serves such a model.

    python examples/serving/bad_version.py --from runs:/<run>/model \\
        --error-share 0.3 --added-latency-ms 200 --out /tmp/churn-bad
    python examples/serving/bad_version.py --from /tmp/churn --error-share 0.5 \\
        --log-to-mlflow churn-bad       # prints the runs:/ URI for a ModelVersion
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from trailboss.serving.faults import Faults, save_faulty_model


def main() -> int:
    parser = argparse.ArgumentParser(description="Make a deliberately bad model version.")
    parser.add_argument("--from", dest="base", required=True, help="the good model's URI or path")
    parser.add_argument("--error-share", type=float, default=0.0, help="share of requests to fail")
    parser.add_argument("--added-latency-ms", type=float, default=0.0, help="delay per request")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="save the bad model in this new directory")
    where.add_argument("--log-to-mlflow", metavar="RUN_NAME", help="log it as an MLflow run")
    args = parser.parse_args()
    faults = Faults.from_config(
        {
            "trailboss.fault.error_share": args.error_share,
            "trailboss.fault.added_latency_seconds": args.added_latency_ms / 1000,
        }
    )
    if args.out:
        save_faulty_model(str(args.out), args.base, faults)
        print(f"saved a bad version of {args.base} at {args.out} ({faults})")
        return 0
    import mlflow

    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_name=args.log_to_mlflow) as run:
        save_faulty_model(f"{tmp}/model", args.base, faults)
        mlflow.log_artifacts(f"{tmp}/model", artifact_path="model")
        mlflow.set_tag("trailboss.fault", "deliberately bad test model")
        print(f"runs:/{run.info.run_id}/model")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env bash
# Each image's locked dependencies installed into a clean venv, as the Dockerfile's
# stages install them (pip --require-hashes, then trailboss without dependencies),
# and every entry point of that image started and its modules imported. This is
# what can be checked of the images on a machine without a container engine.
set -euo pipefail

cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

check() {
  local image=$1 lock=$2 extra=$3
  shift 3
  local venv=$work/$image started
  started=$(date +%s)
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$lock"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps ".$extra"
  "$venv/bin/pip" check
  for command in "$@"; do
    echo "$image: $command"
    (cd "$work" && PATH="$venv/bin:$PATH" bash -c "$command" >/dev/null)
  done
  echo "$image: $(du -sm "$venv" | cut -f1) MB venv, $(($(date +%s) - started)) s"
}

# The operator merges a split drift check's results (trailboss.drift.shard) without
# the drift engine, which its image does not carry.
check operator requirements/operator.txt "" \
  "trailboss --version" "trailboss run --help" "trailboss crds" \
  "python -c 'import trailboss.handlers, trailboss.runtime, trailboss.drift.shard'" \
  "! python -c 'import numpy' 2>/dev/null" \
  "trailboss drift --profile s3://b/p --logs s3://b/l --deployment a.b --model-version 1 2>&1 | grep -q trailboss-drift"
check drift requirements/drift.txt "[drift]" \
  "trailboss drift --help" "trailboss profile --help" \
  "python -c 'import trailboss.drift.job, trailboss.drift.profile, scipy.stats, pyarrow.parquet'"
check serve requirements/serve.txt "[serve]" \
  "trailboss serve --help" "python -c 'import trailboss.serving.app, trailboss.serving.server'"

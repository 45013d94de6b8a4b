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

# The operator's image also runs the reference-profile and drift check Jobs.
check operator requirements/operator.txt "" \
  "trailboss --version" "trailboss run --help" "trailboss drift --help" \
  "trailboss profile --help" "trailboss crds" \
  "python -c 'import trailboss.handlers, trailboss.runtime, trailboss.drift.shard'"
check serve requirements/serve.txt "[serve]" \
  "trailboss serve --help" "python -c 'import trailboss.serving.app, trailboss.serving.server'"

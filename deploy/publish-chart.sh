#!/usr/bin/env bash
# Package the chart and push it to an OCI registry, as a release publishes it.
#
#   deploy/publish-chart.sh oci://ghcr.io/<org>/charts [helm push flags, e.g. --plain-http]
#
# Log in first where the registry needs it (`helm registry login <host>`). Prints the
# reference users install: `helm install trailboss <ref> --version <version>`.
# HELM names the helm binary (default: the one on the PATH); VERSION, when set, is the
# chart's version and appVersion (default: Chart.yaml's).
set -euo pipefail

destination=${1:?usage: deploy/publish-chart.sh oci://<registry>/<path> [helm push flags]}
shift
case $destination in
  oci://*) ;;
  *) echo "the destination must be an oci:// reference, not $destination" >&2; exit 2 ;;
esac
helm=${HELM:-helm}
chart=$(cd "$(dirname "$0")/../charts/trailboss" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$helm" lint --strict "$chart" >/dev/null
packaged=$("$helm" package "$chart" -d "$work" ${VERSION:+--version "$VERSION" --app-version "$VERSION"})
archive=${packaged##*: }
"$helm" push "$archive" "$destination" "$@" >&2
name=$(awk '$1 == "name:" {print $2; exit}' "$chart/Chart.yaml")
version=$(basename "$archive" .tgz)
version=${version#"$name"-}                          # trailboss-0.1.0 -> 0.1.0
echo "${destination%/}/$name --version $version"

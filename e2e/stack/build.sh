#!/usr/bin/env bash
# Builds the binaries of the local e2e stack from the Go module proxy and keeps
# them in a cache outside the repository:
#
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy,
#   kubectl, kwok, helm, prometheus, traefik (the Gateway API implementation),
#   the Gateway API CRDs, the CNCF distribution registry (the chart is pushed to it
#   and installed from oci://) and (when it builds) the MinIO server.
#
# Usage: e2e/stack/build.sh [tool ...]        (default: all tools)
#
# A tool is skipped when its binary exists and its version stamp matches, so a
# second run costs well under a second. Upgrading a tool is a one-line change below.
# Environment:
#   TRAILBOSS_CACHE        cache root (default ~/.cache/trailboss); binaries in $TRAILBOSS_CACHE/bin
#   TRAILBOSS_SKIP_MINIO=1 do not try to build MinIO (the stack then uses moto for S3)
set -euo pipefail

KUBERNETES_VERSION=v1.36.3                          # go list -m -versions k8s.io/kubernetes
ETCD_VERSION=v3.6.16                                # go list -m -versions go.etcd.io/etcd/server/v3
KWOK_VERSION=v0.8.0                                 # go list -m -versions sigs.k8s.io/kwok
HELM_VERSION=v4.3.1                                 # go list -m -versions helm.sh/helm/v4
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c    # go list -m github.com/minio/minio@latest (no semver tags)
PROMETHEUS_VERSION=v0.316.0                         # = Prometheus 3.16.0; go list -m -versions github.com/prometheus/prometheus
TRAEFIK_VERSION=v3.6.12                             # v3.7.x needs modules the proxy does not serve (see README)
GATEWAY_API_VERSION=v1.4.0                          # the one TRAEFIK_VERSION's go.mod requires
REGISTRY_VERSION=v3.1.2                             # go list -m -versions github.com/distribution/distribution/v3

# Bump when the way a tool is built changes, so cached binaries are rebuilt.
RECIPE=1

CACHE_DIR=${TRAILBOSS_CACHE:-$HOME/.cache/trailboss}
BIN_DIR=$CACHE_DIR/bin
STAMP_DIR=$BIN_DIR/.stamps
MOD_DIR=$CACHE_DIR/modules   # the small wrapper modules the tools are built from
LOG_DIR=$CACHE_DIR/build-logs
ALL_TOOLS=(etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl kwok helm
           prometheus traefik gateway-api-crds registry minio)

export CGO_ENABLED=0
export GOFLAGS=-mod=mod
# Never switch to another Go toolchain behind the user's back.
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

GO_VERSION=$(go env GOVERSION)
START=$(date +%s)

log() { printf '[build %4ds] %s\n' "$(($(date +%s) - START))" "$*"; }

module_of() {
  case $1 in
    etcd) echo "go.etcd.io/etcd/server/v3 $ETCD_VERSION" ;;
    kube-*|kubectl) echo "k8s.io/kubernetes $KUBERNETES_VERSION" ;;
    kwok) echo "sigs.k8s.io/kwok $KWOK_VERSION" ;;
    helm) echo "helm.sh/helm/v4 $HELM_VERSION" ;;
    minio) echo "github.com/minio/minio $MINIO_VERSION" ;;
    prometheus) echo "github.com/prometheus/prometheus $PROMETHEUS_VERSION" ;;
    traefik) echo "github.com/traefik/traefik/v3 $TRAEFIK_VERSION" ;;
    gateway-api-crds) echo "sigs.k8s.io/gateway-api $GATEWAY_API_VERSION" ;;
    registry) echo "github.com/distribution/distribution/v3 $REGISTRY_VERSION" ;;
    *) echo "unknown tool: $1" >&2; return 1 ;;
  esac
}

stamp_of() { echo "$(module_of "$1") recipe=$RECIPE $GO_VERSION"; }

is_current() {
  [[ -e $BIN_DIR/$1 && -f $STAMP_DIR/$1 && "$(cat "$STAMP_DIR/$1")" == "$(stamp_of "$1")" ]]
}

# Prints one field of the JSON object that `go mod download -json` or
# `go list -m -json` wrote to stdin; fails (quietly: go said why) if there is none.
json_field() {
  python3 -c '
import json, sys
text = sys.stdin.read().strip()
obj = json.loads(text) if text.startswith("{") else {}
if not obj.get(sys.argv[1]):
    sys.exit(obj.get("Error") or 1)
print(obj[sys.argv[1]])' "$1"
}

# The time the proxy records for a module version: used as the build date so
# that two builds of one version are identical.
module_time() {
  go list -m -json "$1@$2" | json_field Time
}

# A wrapper module that requires one upstream module, with a "go" line taken
# from that module's own go.mod.
plain_wrapper() {
  local dir=$1 path=$2 version=$3 gomod
  mkdir -p "$dir"
  gomod=$(go mod download -json "$path@$version" | json_field GoMod) || return 1
  {
    echo "module trailboss.local/stack/$(basename "$dir")"
    echo
    grep -m1 '^go ' "$gomod"
    echo
    echo "require $path $version"
  } >"$dir/go.mod"
}

# k8s.io/kubernetes replaces its staging modules (k8s.io/api, k8s.io/client-go,
# ...) with directories inside its own tree; a module that depends on it must
# replace them with the published versions instead (v1.X.Y -> v0.X.Y). The list
# is read from k8s.io/kubernetes's own go.mod so it follows the release. A
# staging module the proxy does not serve at that version (only test code uses
# such modules) is replaced by an empty local module.
kubernetes_wrapper() {
  local dir=$MOD_DIR/kubernetes staging=v0.${KUBERNETES_VERSION#v1.} gomod
  rm -rf "$dir" && mkdir -p "$dir"
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | json_field GoMod) ||
    return 1
  go mod edit -json "$gomod" >"$dir/upstream.json" || return 1
  python3 - "$dir" "$KUBERNETES_VERSION" "$staging" <<'EOF'
import json, subprocess, sys
from pathlib import Path

wrapper, release, staging = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
upstream = json.loads((wrapper / "upstream.json").read_text())
modules = sorted(r["Old"]["Path"] for r in upstream.get("Replace") or []
                 if r["New"]["Path"].startswith("./staging/"))
found = subprocess.run(["go", "list", "-m", "-e", "-json", *(f"{m}@{staging}" for m in modules)],
                       check=True, capture_output=True, text=True, cwd=wrapper).stdout
# "go list -e -json" prints one JSON object per module; unserved ones carry "Error".
served, decoder, text, pos = set(), json.JSONDecoder(), found, 0
while pos < len(text):
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos == len(text):
        break
    obj, pos = decoder.raw_decode(text, pos)
    if not obj.get("Error"):
        served.add(obj["Path"])

lines = ["module trailboss.local/stack/kubernetes", "", f"go {upstream['Go']}", ""]
lines += [f"godebug {g['Key']}={g['Value']}" for g in upstream.get("GoDebug") or []]
lines += ["", f"require k8s.io/kubernetes {release}", "", "replace ("]
for m in modules:
    if m in served:
        lines.append(f"\t{m} => {m} {staging}")
    else:
        stub = wrapper / "unpublished" / m
        stub.mkdir(parents=True)
        (stub / "go.mod").write_text(f"module {m}\n\ngo {upstream['Go']}\n")
        lines.append(f"\t{m} => ./unpublished/{m}")
        print(f"  {m} {staging} is not on the proxy; replaced by an empty module", file=sys.stderr)
lines.append(")")
(wrapper / "go.mod").write_text("\n".join(lines) + "\n")
EOF
}

# Like plain_wrapper, for a module whose go.mod has replace and exclude
# directives of its own (a dependent module does not inherit them): they are
# copied, a replacement by a directory of the module pointing into its
# read-only copy in the module cache. A directory that is a module of its own
# is not in the module's zip: it becomes an empty local module under
# unpublished/ that the caller fills in.
replacing_wrapper() {
  local dir=$1 path=$2 version=$3 info
  rm -rf "$dir" && mkdir -p "$dir"
  info=$(go mod download -json "$path@$version") || return 1
  go mod edit -json "$(json_field GoMod <<<"$info")" >"$dir/upstream.json" || return 1
  python3 - "$dir" "$path" "$version" "$(json_field Dir <<<"$info")" <<'EOF'
import json, sys
from pathlib import Path

wrapper, path, version, source = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
upstream = json.loads((wrapper / "upstream.json").read_text())
lines = [f"module trailboss.local/stack/{wrapper.name}", "", f"go {upstream['Go']}", "",
         f"require {path} {version}", ""]
for r in upstream.get("Replace") or []:
    old, new = r["Old"], r["New"]
    target = new["Path"]
    if target.startswith("./"):
        target = f"{source}/{target[2:]}"
        if not Path(target).is_dir():
            target = f"./unpublished/{old['Path']}"
            (wrapper / target).mkdir(parents=True)
            (wrapper / target / "go.mod").write_text(f"module {old['Path']}\n\ngo {upstream['Go']}\n")
            print(f"  {old['Path']} is not published; replaced by a local module", file=sys.stderr)
    lhs = f"{old['Path']} {old.get('Version', '')}".rstrip()
    lines.append(f"replace {lhs} => {target} {new.get('Version', '')}".rstrip())
for x in upstream.get("Exclude") or []:
    lines.append(f"exclude {x['Path']} {x['Version']}")
(wrapper / "go.mod").write_text("\n".join(lines) + "\n")
EOF
}

# The standard-channel CRDs of the Gateway API, as the module publishes them.
gateway_api_crds() {
  local dir
  dir=$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | json_field Dir) ||
    return 1
  rm -rf "$BIN_DIR/gateway-api-crds" && mkdir -p "$BIN_DIR/gateway-api-crds"
  cp "$dir"/config/crd/standard/gateway.networking.k8s.io_*.yaml "$BIN_DIR/gateway-api-crds/"
  chmod 0644 "$BIN_DIR/gateway-api-crds/"*.yaml
}

# The OCI registry's command: upstream's root command, with only the filesystem
# storage driver registered.
registry_main() {
  cat <<'GO'
package main

import (
	"os"

	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

func main() {
	if err := registry.RootCmd.Execute(); err != nil {
		os.Exit(1)
	}
}
GO
}

# Prints "still building" every 30s so a long cold build is visibly alive.
with_ticker() {
  local tool=$1; shift
  # The sleep must not outlive the ticker: it would hold our stdout open.
  ( trap 'kill $nap 2>/dev/null; exit 0' TERM
    while :; do
      sleep 30 >/dev/null 2>&1 & nap=$!
      wait $nap
      log "  ... still building $tool"
    done ) &
  local ticker=$!
  local rc=0
  "$@" || rc=$?
  kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true
  return $rc
}

# EXTRA_TAGS: more build tags for one tool.
gobuild() { # tool, wrapper dir, package, ldflags
  local tool=$1 dir=$2 pkg=$3 ldflags=$4
  with_ticker "$tool" go_build_logged "$tool" "$dir" "$pkg" "$ldflags"
}

go_build_logged() {
  local tool=$1 dir=$2 pkg=$3 ldflags=$4
  ( cd "$dir" && go build -trimpath -tags="notest,grpcnotrace${EXTRA_TAGS:+,$EXTRA_TAGS}" \
      -ldflags "-s -w $ldflags" -o "$BIN_DIR/$tool.new" "$pkg" ) >>"$LOG_DIR/$tool.log" 2>&1
}

# Every step says "|| return 1": the caller tests this function with "if", and
# in that context bash ignores "set -e".
build_tool() {
  local tool=$1 path version date commit x major minor
  read -r path version <<<"$(module_of "$tool")"
  case $tool in
    etcd)
      plain_wrapper "$MOD_DIR/etcd" "$path" "$version" || return 1
      gobuild etcd "$MOD_DIR/etcd" go.etcd.io/etcd/server/v3 \
        "-X go.etcd.io/etcd/api/v3/version.GitSHA=${version}" || return 1
      ;;
    kube-*|kubectl)
      if ! grep -qs "k8s.io/kubernetes $version" "$MOD_DIR/kubernetes/go.mod"; then
        kubernetes_wrapper || return 1
      fi
      date=$(module_time "$path" "$version") || return 1
      IFS=. read -r major minor _ <<<"${version#v}"
      x=""
      for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        x+=" -X $p.gitVersion=$version -X $p.gitMajor=$major -X $p.gitMinor=$minor"
        x+=" -X $p.gitCommit= -X $p.gitTreeState=clean -X $p.buildDate=$date"
      done
      gobuild "$tool" "$MOD_DIR/kubernetes" "k8s.io/kubernetes/cmd/$tool" "$x" || return 1
      ;;
    kwok)
      plain_wrapper "$MOD_DIR/kwok" "$path" "$version" || return 1
      gobuild kwok "$MOD_DIR/kwok" sigs.k8s.io/kwok/cmd/kwok \
        "-X sigs.k8s.io/kwok/pkg/consts.Version=${version#v} -X sigs.k8s.io/kwok/pkg/consts.PreRelease=GA" ||
        return 1
      ;;
    helm)
      plain_wrapper "$MOD_DIR/helm" "$path" "$version" || return 1
      x="-X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.metadata="
      x+=" -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
      gobuild helm "$MOD_DIR/helm" helm.sh/helm/v4/cmd/helm "$x" || return 1
      ;;
    minio)
      plain_wrapper "$MOD_DIR/minio" "$path" "$version" || return 1
      date=$(module_time "$path" "$version") || return 1   # e.g. 2026-02-12T20:18:48Z
      commit=${version##*-}
      x="-X github.com/minio/minio/cmd.Version=$date -X github.com/minio/minio/cmd.CopyrightYear=${date:0:4}"
      x+=" -X github.com/minio/minio/cmd.ReleaseTag=DEVELOPMENT.${date//:/-}"
      x+=" -X github.com/minio/minio/cmd.CommitID=$commit -X github.com/minio/minio/cmd.ShortCommitID=$commit"
      gobuild minio "$MOD_DIR/minio" github.com/minio/minio "$x" || return 1
      ;;
    prometheus)
      plain_wrapper "$MOD_DIR/prometheus" "$path" "$version" || return 1
      date=$(module_time "$path" "$version") || return 1
      x="-X github.com/prometheus/common/version.Version=3.${version#v0.3}"   # v0.316.0 is 3.16.0
      x+=" -X github.com/prometheus/common/version.Branch=release -X github.com/prometheus/common/version.BuildDate=$date"
      # Only the service discovery the stack uses (kubernetes, file, http): the
      # other providers' SDKs are most of a full build.
      EXTRA_TAGS=remove_all_sd,enable_kubernetes_sd \
        gobuild prometheus "$MOD_DIR/prometheus" github.com/prometheus/prometheus/cmd/prometheus "$x" ||
        return 1
      ;;
    traefik)
      replacing_wrapper "$MOD_DIR/traefik" "$path" "$version" || return 1
      # From v3.7 on: Traefik's extension point of its dynamic configuration,
      # two structs embedded in Router and HTTPConfiguration, empty in an
      # open-source build.
      ext=$MOD_DIR/traefik/unpublished/github.com/traefik/traefik/dynamic/ext
      if [[ -d $ext ]]; then
        printf 'package ext\n\ntype HTTP struct{}\n\ntype Router struct{}\n' >"$ext/ext.go" || return 1
      fi
      date=$(module_time "$path" "$version") || return 1
      x="-X github.com/traefik/traefik/v3/pkg/version.Version=$version"
      x+=" -X github.com/traefik/traefik/v3/pkg/version.BuildDate=$date"
      gobuild traefik "$MOD_DIR/traefik" github.com/traefik/traefik/v3/cmd/traefik "$x" || return 1
      ;;
    registry)
      # Not upstream's cmd/registry, which links every storage driver (the Azure, GCS
      # and AWS SDKs are most of its build): a main of our own with the filesystem
      # driver, all a test registry on loopback stores charts in.
      plain_wrapper "$MOD_DIR/registry" "$path" "$version" || return 1
      registry_main >"$MOD_DIR/registry/main.go" || return 1
      gobuild registry "$MOD_DIR/registry" . \
        "-X github.com/distribution/distribution/v3/version.version=$version" || return 1
      ;;
    gateway-api-crds)
      gateway_api_crds || return 1
      stamp_of "$tool" >"$STAMP_DIR/$tool"
      return 0
      ;;
  esac
  mv "$BIN_DIR/$tool.new" "$BIN_DIR/$tool" || return 1
  stamp_of "$tool" >"$STAMP_DIR/$tool"
}

main() {
  local tools=("$@") failed=() t0
  [[ ${#tools[@]} -gt 0 ]] || tools=("${ALL_TOOLS[@]}")
  mkdir -p "$BIN_DIR" "$STAMP_DIR" "$MOD_DIR" "$LOG_DIR"
  log "cache $BIN_DIR ($GO_VERSION, kubernetes $KUBERNETES_VERSION, etcd $ETCD_VERSION)"
  for tool in "${tools[@]}"; do
    module_of "$tool" >/dev/null
    if is_current "$tool"; then
      log "$tool: up to date"
      continue
    fi
    if [[ $tool == minio && ${TRAILBOSS_SKIP_MINIO:-} == 1 ]]; then
      log "minio: skipped (TRAILBOSS_SKIP_MINIO=1)"
      continue
    fi
    # An optional tool that failed at this very version is not retried on every
    # run (that would make the no-op run slow); delete the .failed file to retry.
    if [[ $tool == minio && "$(head -n1 "$STAMP_DIR/$tool.failed" 2>/dev/null)" == "$(stamp_of "$tool")" ]]; then
      log "$tool: failed to build before, skipped (see $STAMP_DIR/$tool.failed)"
      continue
    fi
    t0=$(date +%s)
    log "$tool: building $(module_of "$tool")"
    : >"$LOG_DIR/$tool.log"
    if build_tool "$tool" 2>>"$LOG_DIR/$tool.log"; then
      rm -f "$STAMP_DIR/$tool.failed"
      log "$tool: built in $(($(date +%s) - t0))s"
    else
      rm -f "$BIN_DIR/$tool.new"
      { stamp_of "$tool"; tail -n 30 "$LOG_DIR/$tool.log"; } >"$STAMP_DIR/$tool.failed"
      tail -n 30 "$LOG_DIR/$tool.log" >&2
      log "$tool: FAILED after $(($(date +%s) - t0))s (log: $LOG_DIR/$tool.log)"
      failed+=("$tool")
    fi
  done
  log "done in $(($(date +%s) - START))s"
  # MinIO is optional: the stack falls back to moto's S3 server without it.
  for t in "${failed[@]}"; do
    if [[ $t != minio ]]; then
      log "required tools failed: ${failed[*]}"
      exit 1
    fi
  done
  if [[ ${#failed[@]} -gt 0 ]]; then
    log "minio did not build; the stack will use moto for S3"
  fi
}

main "$@"

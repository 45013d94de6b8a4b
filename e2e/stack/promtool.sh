#!/usr/bin/env bash
# promtool, for the alert rule tests, from Debian's `prometheus` package.
# Only the promtool binary is extracted into the cache: no Prometheus service is
# installed or started. Idempotent: a promtool already in the cache is kept.
set -euo pipefail

CACHE=${TRAILBOSS_CACHE:-$HOME/.cache/trailboss}
BIN=$CACHE/bin
if [ -x "$BIN/promtool" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
  echo "promtool.sh: needs apt-get and dpkg-deb (Debian/Ubuntu); or put a promtool in $BIN" >&2
  exit 1
fi
mkdir -p "$BIN"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download prometheus >/dev/null 2>&1; then
  # A fresh machine has no package lists yet.
  apt-get update -qq
  apt-get download prometheus
fi
dpkg-deb -x prometheus_*.deb root
install -m 0755 root/usr/bin/promtool "$BIN/promtool"
echo "promtool.sh: $("$BIN/promtool" --version 2>&1 | head -1) -> $BIN/promtool"

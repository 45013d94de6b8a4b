#!/usr/bin/env bash
# The system packages of the local stack's pod network, from Debian: nftables
# (kube-proxy's nftables mode runs `nft`) and iproute2 (network namespaces, the
# bridge, routes).
#
# Usage: e2e/stack/system-deps.sh   (installs with apt-get when run as root and
# something is missing; a no-op when both are there)
#
# Prometheus is not taken from Debian: its package (2.42) is built without the
# Kubernetes service discovery the stack needs; build.sh builds it instead.
set -euo pipefail

log() { printf '[system-deps] %s\n' "$*"; }

if command -v nft >/dev/null && command -v ip >/dev/null; then
  log "nftables and iproute2: present"
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  log "nftables/iproute2 missing and not root: the stack will run without a pod network"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends nftables iproute2
log "installed nftables and iproute2"

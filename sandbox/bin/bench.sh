#!/bin/bash
# Time the sandbox main job three ways and print the figures:
#   cold    - fresh nodes, empty controller artifact cache (FFmpeg is compiled once)
#   cached  - fresh nodes, artifact already in the controller cache
#   rerun   - the same nodes again, nothing to change
# Uses its own artifact cache so your real cache is left alone. Prints one
# line per run: wall seconds and the PLAY RECAP of each node.
set -euo pipefail
cd "$(dirname "$0")/../.."
export XPULAB_ARTIFACT_CACHE="${XPULAB_BENCH_CACHE:-$HOME/.cache/xpulab/bench-artifacts}"

run() {  # label, then the command
  local label=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  "$@" > "/tmp/xpulab-bench-$label.log" 2>&1
  t1=$(date +%s.%N)
  printf '%-8s %8.1f s   %s\n' "$label" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
    "$(grep -E '^xpulab-node[0-9]+ +:' "/tmp/xpulab-bench-$label.log" | sed 's/  */ /g' | tr '\n' ';')"
}

fresh_nodes() {  # new empty nodes; the mirror (and anything using it) stays up
  local nodes
  nodes=$(sandbox/bin/podman ps -a --filter label=xpulab.sandbox=node --format '{{.Names}}')
  [ -z "$nodes" ] || sandbox/bin/podman rm -f $nodes >/dev/null
  ansible-playbook sandbox/playbooks/up.yml >/dev/null
}

case "${1:-all}" in
  all|cold)
    rm -rf "$XPULAB_ARTIFACT_CACHE"
    fresh_nodes
    run cold ansible-playbook site.yml -i inventories/sandbox
    ;;&
  all|cached)
    fresh_nodes
    run cached ansible-playbook site.yml -i inventories/sandbox
    ;;&
  all|rerun)
    run rerun ansible-playbook site.yml -i inventories/sandbox
    ;;
esac

#!/bin/bash
# The apt_proxy role for real, in two podman containers: a proxy host
# (apt-cacher-ng installed and started by playbooks/apt_proxy.yml) and a node
# that uses it through xpulab_apt_proxy_url. It checks check mode on new
# hosts, a second run with changed=0, that a second download of the same
# packages is served from the cache (apt-cacher-ng's log), and that an empty
# URL removes the setting and then costs one skipped task per node.
#
#   tests/apt_proxy/live.sh            # containers <prefix>-srv, <prefix>-node
#   PREFIX=aptproxy PORT=3152 PKGS="vainfo intel-media-va-driver" KEEP=1 tests/apt_proxy/live.sh
set -euo pipefail
root=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)
prefix=${PREFIX:-aptproxy}
port=${PORT:-3152}
image=${IMAGE:-localhost/xpulab-debian:12}
pkgs=${PKGS:-vainfo intel-media-va-driver}
podman="$root/sandbox/bin/podman"
srv=$prefix-srv
node=$prefix-node
work=$(mktemp -d)
cleanup() {
  if [ -z "${KEEP:-}" ]; then "$podman" rm -f -t 0 "$srv" "$node" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cd "$root"

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
# changed= of a host in the play recap of the log given
changed() { sed -n "s/^$1 *: ok=[0-9]* *changed=\([0-9]*\).*/\1/p" "$2"; }
play() {  # play LOG [ansible-playbook args]
  local log=$1; shift
  ansible-playbook -i "$work/inventory.yml" playbooks/apt_proxy.yml "$@" >"$log" 2>&1 || { tail -40 "$log"; fail "ansible-playbook $*"; }
}
on_node() { "$podman" exec "$node" "$@"; }

"$podman" rm -f -t 0 "$srv" "$node" >/dev/null 2>&1 || true
# The proxy's cache is a directory of this machine, as in the sandbox
# (sandbox/playbooks/up.yml): the role makes it the daemon's.
mkdir "$work/cache"
"$podman" run -d --name "$srv" --hostname "$srv" --network host -v "$work/cache:/var/cache/apt-cacher-ng" \
  "$image" sleep infinity >/dev/null
"$podman" run -d --name "$node" --hostname "$node" --network host "$image" sleep infinity >/dev/null
cat >"$work/inventory.yml" <<INV
all:
  vars:
    ansible_connection: containers.podman.podman
    ansible_podman_executable: $podman
    apt_proxy_port: $port
    apt_proxy_bind_addresses: [127.0.0.1]
  children:
    xpulab_apt_proxy:
      hosts:
        $srv:
    xpulab_nodes:
      hosts:
        $node:
          xpulab_apt_proxy_url: http://127.0.0.1:$port
INV

say "check mode on new hosts"
# Ansible's apt module needs python3-apt for check mode (a real run installs it).
"$podman" exec "$srv" sh -c 'apt-get update -qq && apt-get install -qq -y --no-install-recommends python3-apt' >/dev/null
play "$work/check.log" --check
say "first run"
start=$(date +%s)
play "$work/run1.log"
echo "first run: $(( $(date +%s) - start )) s, changed: srv=$(changed "$srv" "$work/run1.log") node=$(changed "$node" "$work/run1.log")"
say "second run"
play "$work/run2.log"
[ "$(changed "$srv" "$work/run2.log")" = 0 ] && [ "$(changed "$node" "$work/run2.log")" = 0 ] \
  || { grep -B3 'changed:' "$work/run2.log"; fail "second run changed something"; }
echo "second run: changed=0 on both"
play "$work/check2.log" --check
[ "$(changed "$srv" "$work/check2.log")" = 0 ] || fail "check mode on settled hosts reports changes"

say "the node's apt configuration"
on_node apt-config dump | grep -i 'proxy' || fail "apt does not see the proxy setting"

fetch() {  # apt-get update and a download of $pkgs through the proxy, from empty apt caches; prints seconds
  on_node sh -c 'apt-get clean && rm -rf /var/lib/apt/lists/*'
  local t0 t1
  t0=$(date +%s.%N)
  on_node sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -qq -y --download-only --no-install-recommends $pkgs" >/dev/null
  t1=$(date +%s.%N)
  printf '%.2f' "$(echo "$t1 - $t0" | bc)"
}
log=/var/log/apt-cacher-ng/apt-cacher.log
acng_log() { "$podman" exec "$srv" sh -c "cat $log"; }
# apt-cacher-ng's log: time|I or O|bytes|client|path; I = fetched from upstream, O = sent to a client.
count() {  # count FILE I|O ALL|DEB: "files bytes"
  awk -F'|' -v t="$2" -v d="$3" '$2==t && (d=="ALL" || $5 ~ /\.deb$/) {n++; b+=$3} END {printf "%d %d", n, b}' "$1"
}
say "cold cache: apt-get update and download $pkgs"
cold=$(fetch)
acng_log >"$work/cold.log"
debs=$(on_node sh -c 'ls /var/cache/apt/archives/*.deb | wc -l')
bytes=$(on_node sh -c 'du -cb /var/cache/apt/archives/*.deb | tail -1 | cut -f1')
say "warm cache: the same again (the node's apt lists and archives emptied first)"
warm=$(fetch)
acng_log | tail -n +$(( $(wc -l <"$work/cold.log") + 1 )) >"$work/warm.log"
read -r in_cold_debs _ <<<"$(count "$work/cold.log" I DEB)"
read -r _ in_cold_bytes <<<"$(count "$work/cold.log" I ALL)"
read -r in_warm_debs _ <<<"$(count "$work/warm.log" I DEB)"
read -r _ in_warm_bytes <<<"$(count "$work/warm.log" I ALL)"
read -r out_warm_debs out_warm_bytes <<<"$(count "$work/warm.log" O ALL)"
echo "packages: $pkgs -> $debs .deb files, $bytes bytes"
echo "cold: $cold s; from upstream: $in_cold_debs .deb, $in_cold_bytes bytes in all (indexes included)"
echo "warm: $warm s; from upstream: $in_warm_debs .deb, $in_warm_bytes bytes (InRelease is always revalidated); to the node: $out_warm_bytes bytes"
[ "$debs" -gt 0 ] && [ "$in_cold_debs" -ge "$debs" ] || fail "the cold download did not go through the proxy"
out_warm_debs=$(count "$work/warm.log" O DEB | cut -d' ' -f1)
[ "$out_warm_debs" -ge "$debs" ] && [ "$in_warm_debs" = 0 ] || fail "the warm download was not served from the cache"

say "empty URL: the setting goes, then one skipped task per node"
play "$work/off1.log" -e xpulab_apt_proxy_url=
on_node test ! -e /etc/apt/apt.conf.d/01xpulab-proxy || fail "the proxy setting is still there"
on_node test ! -e /etc/ansible/facts.d/xpulab_apt_proxy_client.fact || fail "the client fact is still there"
play "$work/off2.log" -e xpulab_apt_proxy_url=
tasks=$(awk '/^PLAY \[Point the nodes/ {p=1} p && /^TASK \[/ {n++} END {print n+0}' "$work/off2.log")
grep -q "^$node *: ok=1 *changed=0 .*skipped=1 " "$work/off2.log" || { cat "$work/off2.log"; fail "no-proxy run"; }
echo "no-proxy run: $tasks tasks in the nodes' play (Gathering Facts and the skipped include), node ok=1 (facts) skipped=1"
say "PASS"

#!/bin/sh
# Build a local Debian base image with debootstrap and import it into podman.
# Cached twice: the root tarball under $XPULAB_CACHE/images and the podman
# image itself; nothing is rebuilt while either exists.
# Usage: build-image.sh SUITE IMAGE     e.g. build-image.sh bookworm localhost/xpulab-debian:12
# Prints "present" or "built" as its last line.
set -eu
suite=$1
image=$2
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
podman="$here/podman"
cache="${XPULAB_CACHE:-$HOME/.cache/xpulab}/images"

if "$podman" image exists "$image"; then
  echo present
  exit 0
fi

debian_mirror() {
  # The Debian mirror apt on this machine already uses, unless overridden.
  if [ -n "${XPULAB_DEBIAN_MIRROR:-}" ]; then echo "$XPULAB_DEBIAN_MIRROR"; return; fi
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk '/^URIs:/ {print $2; exit}' "$f")
    case "$uri" in *debian-security*|"") ;; *debian*) echo "$uri"; return ;; esac
  done
  uri=$(awk '$1 == "deb" && $2 ~ /debian$/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

mkdir -p "$cache"
tarball="$cache/$suite.tar"
if [ ! -s "$tarball" ]; then
  work=$(mktemp -d "$cache/.$suite.XXXXXX")
  trap 'rm -rf "$work"' EXIT INT TERM
  debootstrap --variant=minbase --include=python3,ca-certificates \
    "$suite" "$work/root" "$(debian_mirror)" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  tar -C "$work/root" -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
fi
"$podman" import --quiet "$tarball" "$image" >/dev/null
echo built

#!/bin/sh
# Build a signed apt repository (suite "all", component "main", amd64) with
# Debian's tools, beside REPO, and swap it in by rename.
# Usage: build-apt-repo.sh SRC REPO GNUPGHOME FINGERPRINT STAMP
#   SRC/pkg/*/        package trees (DEBIAN/control, files)  -> dpkg-deb --build
#   SRC/release.conf  apt-ftparchive release settings        -> dists/all/Release
# Signs Release (InRelease, Release.gpg) with the key FINGERPRINT of
# GNUPGHOME, exports that key (GPG-PUB-KEY-XPULAB-SANDBOX.PUB, KEY_FINGERPRINT)
# and writes the empty file REPO/STAMP last. Prints "built", or "unchanged"
# when REPO/STAMP exists (a concurrent run built it). Needs dpkg's
# dpkg-deb, apt-utils' apt-ftparchive, gnupg, util-linux's flock.
set -eu
src=$1 repo=$2 gnupghome=$3 key=$4 stamp=$5
mkdir -p "$(dirname "$repo")"
exec 9>"$gnupghome.lock"
flock 9
if [ -e "$repo/$stamp" ]; then echo unchanged; exit 0; fi
new=$repo.new
rm -rf "$new" "$repo.old"
trap 'rm -rf "$new"; gpgconf --homedir "$gnupghome" --kill gpg-agent 2>/dev/null || true' EXIT
bin=$new/dists/all/main/binary-amd64
mkdir -p "$new/pool/main" "$bin"
for tree in "$src"/pkg/*/; do
  SOURCE_DATE_EPOCH=1767225600 dpkg-deb --root-owner-group -Zxz --build "$tree" "$new/pool/main/" >/dev/null
done
(cd "$new" && apt-ftparchive packages pool/main) >"$bin/Packages"
gzip -9n <"$bin/Packages" >"$bin/Packages.gz"
apt-ftparchive -c "$src/release.conf" release "$new/dists/all" >"$new/Release.tmp"
mv "$new/Release.tmp" "$new/dists/all/Release"
gpg() { command gpg --batch --no-tty --homedir "$gnupghome" "$@"; }
sign="--local-user $key --digest-algo SHA512 --yes"
gpg $sign --clearsign --output "$new/dists/all/InRelease" "$new/dists/all/Release"
gpg $sign --armor --detach-sign --output "$new/dists/all/Release.gpg" "$new/dists/all/Release"
gpg --armor --export "$key" >"$new/GPG-PUB-KEY-XPULAB-SANDBOX.PUB"
echo "$key" >"$new/KEY_FINGERPRINT"
chmod -R u=rwX,go=rX "$new"
: >"$new/$stamp"
if [ -e "$repo" ]; then mv "$repo" "$repo.old"; fi
mv "$new" "$repo"
rm -rf "$repo.old"
echo built

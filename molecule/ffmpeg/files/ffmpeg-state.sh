#!/bin/sh
# Print what the ffmpeg role owns on a node, so a test can compare before/after.
# With --packages, also a digest of the installed package set.
set -u
echo "fact: $(cat /etc/ansible/facts.d/xpulab_ffmpeg.fact 2>/dev/null | tr -d ' \n')"
for link in /opt/ffmpeg/current /opt/ffmpeg/[0-9]*; do
  [ -L "$link" ] && echo "link: $link -> $(readlink "$link")"
done
ls -1 /opt/ffmpeg/.releases 2>/dev/null | sed 's/^/release: /'
if [ "${1:-}" = --packages ]; then
  echo "packages: $(dpkg-query -W -f '${Package} ${Version}\n' | sort | md5sum | cut -c1-32)"
fi

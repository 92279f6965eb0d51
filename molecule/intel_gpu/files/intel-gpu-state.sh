#!/bin/sh
# Print what the intel_gpu role owns on a node, so a test can compare
# before/after: the fact, apt sources and keyrings, GPU groups, staging, and
# a digest of the installed package set.
set -u
echo "fact: $(tr -d ' \n' < /etc/ansible/facts.d/xpulab_intel_gpu.fact 2>/dev/null)"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/* /usr/share/keyrings/intel-graphics.gpg; do
  [ -f "$f" ] && echo "file: $f $(md5sum < "$f" | cut -c1-32)"
done
for g in render video; do
  echo "group: $(getent group "$g" || echo "$g absent")"
done
ls -1A /var/cache/xpulab/intel_gpu 2>/dev/null | sed 's/^/staging: /'
echo "packages: $(dpkg-query -W -f '${Package} ${Version} ${db:Status-Status}\n' | sort | md5sum | cut -c1-32)"

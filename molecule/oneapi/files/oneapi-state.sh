#!/bin/sh
# Print what the oneapi role owns on a node, so a test can compare before/after.
# With --packages, also a digest of the installed package set.
set -u
for f in /usr/share/keyrings/oneapi-archive-keyring.gpg /etc/apt/sources.list.d/oneapi.sources /etc/apt/preferences.d/xpulab-oneapi /opt/intel/oneapi/setvars.sh; do
  if [ -e "$f" ]; then echo "file: $f $(sha256sum < "$f" | cut -c1-16)"; else echo "file: $f absent"; fi
done
if [ -e /var/cache/xpulab/oneapi ]; then echo "staging: $(ls -A /var/cache/xpulab/oneapi | tr '\n' ' ')"; else echo "staging: absent"; fi
if dpkg-query -W -f '${db:Status-Status}' gpg 2>/dev/null | grep -qx installed; then echo "gpg: installed"; else echo "gpg: absent"; fi
echo "fact: $(tr -d ' \n' < /etc/ansible/facts.d/xpulab_oneapi.fact 2>/dev/null)"
dpkg-query -W -f '${db:Status-Status} ${Package} ${Version}\n' 'intel-deep-learning-essentials-*' 2>/dev/null \
  | sed -n 's/^installed /dle: /p'
if [ "${1:-}" = --packages ]; then
  echo "packages: $(dpkg-query -W -f '${Package} ${Version} ${db:Status-Status}\n' | sort | md5sum | cut -c1-32)"
fi

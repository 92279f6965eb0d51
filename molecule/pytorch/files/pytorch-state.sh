#!/bin/sh
# Print what the pytorch role owns on a node, so a test can compare
# before/after: the fact, the venv's source record and its package set.
set -u
venv=${1:-/opt/xpulab/venv}
echo "fact: $(tr -d ' \n' < /etc/ansible/facts.d/xpulab_pytorch.fact 2>/dev/null)"
echo "source: $(tr -d ' \n' < "$venv/xpulab-source.json" 2>/dev/null)"
echo "pyvenv: $(stat -c '%i %Y' "$venv/pyvenv.cfg" 2>/dev/null)"
echo "packages: $("$venv/bin/python" -m pip freeze --all 2>/dev/null | md5sum | cut -c1-32)"

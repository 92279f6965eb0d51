"""Make the project's plugins importable in unit tests.

collections/ holds ansible_collections/xpulab/gpu, a link back to the
repository root, so `ansible_collections.xpulab.gpu.plugins...` (how the
modules import plugins/module_utils) resolves to the working tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for sub in ("collections", "plugins/filter", "plugins/modules", "roles/fleet_report/files", "tools"):
    path = str(ROOT / sub)
    if path not in sys.path:
        sys.path.insert(0, path)

# Playbooks that unit tests run from the checkout (its ansible.cfg enables the
# run history callback) stay out of the user's run history; the history tests
# turn it back on for their own runs.
os.environ.setdefault("XPULAB_HISTORY", "0")


@pytest.fixture
def live_holder() -> Iterator[int]:
    """A live process whose command line says ansible-playbook, as a running lock holder's does
    (the run lock and the controller cache lock tests)."""
    proc = subprocess.Popen(["bash", "-c", "exec -a ansible-playbook sleep 300"])
    yield proc.pid
    proc.kill()
    proc.wait()

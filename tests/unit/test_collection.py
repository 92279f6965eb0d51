"""The built artifact works installed: ansible-galaxy builds it, installs it into
an empty directory, and xpulab.gpu.site resolves there (run from outside the
repository, so nothing resolves to the working tree)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
INVENTORY = ROOT / "inventories" / "sandbox"
# Roles a site run lists; xpulab_state is only included dynamically by the others.
LISTED_ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.name not in ("xpulab_state", "xpulab_lock"))


def tool(name: str) -> str:
    return str(BIN / name) if (BIN / name).exists() else (shutil.which(name) or name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work directory outside the repository holding installed/ansible_collections/xpulab/gpu."""
    work = tmp_path_factory.mktemp("collection")
    subprocess.run([tool("ansible-galaxy"), "collection", "build", "--output-path", str(work / "build"), str(ROOT)],
                   check=True, capture_output=True, cwd=work)
    tarball = next((work / "build").glob("xpulab-gpu-*.tar.gz"))
    subprocess.run([tool("ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(work / "installed"),
                    str(tarball)], check=True, capture_output=True, cwd=work)
    return work


def playbook(work: Path, collections: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    return subprocess.run([tool("ansible-playbook"), "xpulab.gpu.site", "-i", str(INVENTORY), *args],
                          capture_output=True, text=True, cwd=work, env=env, timeout=300, check=False)


def test_artifact_holds_the_roles_plugins_and_playbooks(installed: Path) -> None:
    tree = installed / "installed" / "ansible_collections" / "xpulab" / "gpu"
    for path in ("playbooks/site.yml", "playbooks/lock.yml", "roles/xpulab_lock/tasks/install.yml", "meta/runtime.yml", "plugins/module_utils/openpgp.py",
                 "plugins/modules/xpulab_apt_keyring.py", "roles/fleet_report/files/fleet_report.py",
                 *(f"roles/{role}/tasks/main.yml" for role in LISTED_ROLES)):
        assert (tree / path).is_file(), path
    for left_out in ("collections", ".venv", "molecule", "reports"):
        assert not (tree / left_out).exists(), left_out


def test_site_resolves_only_from_the_installed_collection(installed: Path) -> None:
    empty = installed / "empty"
    empty.mkdir(exist_ok=True)
    missing = playbook(installed, empty, "--syntax-check")
    assert missing.returncode != 0 and "xpulab.gpu.site" in missing.stderr, missing.stderr
    check = playbook(installed, installed / "installed", "--syntax-check")
    assert check.returncode == 0, check.stderr


def test_installed_site_lists_every_roles_tasks(installed: Path) -> None:
    listed = playbook(installed, installed / "installed", "--list-tasks")
    assert listed.returncode == 0, listed.stderr
    for role in LISTED_ROLES:
        assert f"xpulab.gpu.{role} : " in listed.stdout, f"no task of {role} listed:\n{listed.stdout}"
    only_ffmpeg = playbook(installed, installed / "installed", "--list-tasks", "--tags", "ffmpeg")
    tasks = [line.strip() for line in only_ffmpeg.stdout.splitlines() if " : " in line]
    # Besides FFmpeg's own tasks, only the argument-spec checks, the node run lock (tagged always)
    # and the xpulab_state check that the ffmpeg role imports (tagged ffmpeg) run.
    others = [t for t in tasks if not t.startswith("xpulab.gpu.ffmpeg : ") and "Validating arguments" not in t
              and not (t.startswith("xpulab.gpu.xpulab_state : ")
                       and ("TAGS: [always]" in t or "TAGS: [ffmpeg, install]" in t))]
    assert any(t.startswith("xpulab.gpu.ffmpeg : Compute the build fingerprint") for t in tasks) and not others, others

"""The sandbox's PyPI mirror (sandbox/playbooks/tasks/mirror_pypi.yml): pip download + dumb-pypi, for real.

The task file runs in a localhost play against a temporary mirror. pip
downloads from a local folder of tiny wheels made here (--no-index
--find-links, no network), for the nodes' Python, ABI and glibc; the index
is then used the way the nodes use it: pip reading it with --index-url.
"""

from __future__ import annotations

import hashlib
import html.parser
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from playbook_runner import Run, run_tasks

TASKS = "mirror_pypi.yml"
# pip on its own: no user or site configuration, index or wheel store.
PIP_ENV: dict[str, str | None] = {
    "PIP_CONFIG_FILE": os.devnull, **{k: None for k in os.environ if k.startswith("PIP_") and k != "PIP_CONFIG_FILE"}}


def wheel(store: Path, name: str, version: str, tag: str, requires: tuple[str, ...] = ()) -> Path:
    """A minimal wheel: METADATA, WHEEL and RECORD, no code."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = store / f"{dist}-{tag}.whl"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Python: >=3.9\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{dist}.dist-info/METADATA", metadata)
        zf.writestr(f"{dist}.dist-info/WHEEL", f"Wheel-Version: 1.0\nGenerator: xpulab-test\nRoot-Is-Purelib: false\nTag: {tag}\n")
        zf.writestr(f"{dist}.dist-info/RECORD", "")
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The "upstream": an app (pure Python) that needs a lib with two builds; the newer needs glibc 2.39."""
    path = tmp_path_factory.mktemp("store")
    wheel(path, "xpulab-demo-app", "1.0", "py3-none-any", ("xpulab-demo-lib",))
    wheel(path, "xpulab-demo-lib", "1.0", "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64")
    wheel(path, "xpulab-demo-lib", "2.0", "cp311-cp311-manylinux_2_39_x86_64")
    wheel(path, "xpulab-demo-lib", "3.0", "cp312-cp312-manylinux_2_17_x86_64")  # another Python
    wheel(path, "xpulab-demo-other", "1.0", "py3-none-any")
    return path


def fill(work: Path, store: Path, requirements: list[str], **extra: Any) -> Run:
    return run_tasks(TASKS, work, {"sandbox_pypi_requirements": requirements, "sandbox_pypi_python_versions": ["3.11"],
                                   "sandbox_pypi_glibc": "2.36", "sandbox_pypi_pip_args": ["--no-index", "--find-links", str(store)],
                                   **extra}, env=PIP_ENV)


class Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value for key, value in attrs if tag == "a" and key == "href" and value]


def links(page: Path) -> list[str]:
    parser = Links()
    parser.feed(page.read_text())
    return parser.hrefs


def pip_download(index: Path, dest: Path, *requirements: str) -> subprocess.CompletedProcess[str]:
    """pip as a Debian 12 node (Python 3.11, glibc 2.36) would read the mirror, with nothing else configured."""
    return subprocess.run([sys.executable, "-m", "pip", "download", "--isolated", "--disable-pip-version-check",
                           "--index-url", index.as_uri(), "--dest", str(dest), "--only-binary=:all:",
                           "--python-version", "3.11", "--platform", "manylinux_2_36_x86_64", "--platform", "manylinux2014_x86_64",
                           *requirements], capture_output=True, text=True, check=False,
                          env={k: v for k, v in {**os.environ, **PIP_ENV}.items() if v is not None})


def test_fill_serves_exactly_the_resolved_wheels_with_their_hashes(tmp_path: Path, store: Path) -> None:
    run = fill(tmp_path, store, ["xpulab-demo-app"])
    assert run.rc == 0, run.output[-4000:]
    pypi = tmp_path / "mirror" / "pypi"
    # glibc 2.36 and Python 3.11: lib 1.0, not 2.0 (glibc 2.39) nor 3.0 (cp312); "other" was not asked for.
    assert sorted(p.name for p in (pypi / "files").iterdir()) == [
        "xpulab_demo_app-1.0-py3-none-any.whl", "xpulab_demo_lib-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"]
    assert sorted(links(pypi / "simple" / "index.html")) == ["xpulab-demo-app/index.html", "xpulab-demo-lib/index.html"]
    for project in ("xpulab-demo-app", "xpulab-demo-lib"):
        (href,) = links(pypi / "simple" / project / "index.html")
        target, _, fragment = href.partition("#sha256=")
        assert target.startswith("../../files/")
        served = (pypi / "simple" / project / target).resolve()
        assert hashlib.sha256(served.read_bytes()).hexdigest() == fragment

    got = pip_download(pypi / "simple", tmp_path / "node", "xpulab-demo-app")
    assert got.returncode == 0, got.stdout + got.stderr
    assert sorted(p.name for p in (tmp_path / "node").iterdir()) == sorted(p.name for p in (pypi / "files").iterdir())
    missing = pip_download(pypi / "simple", tmp_path / "node2", "xpulab-demo-other")
    assert missing.returncode != 0


def test_same_inputs_change_nothing_and_new_inputs_replace_the_set(tmp_path: Path, store: Path) -> None:
    assert fill(tmp_path, store, ["xpulab-demo-app"]).changed > 0
    files = tmp_path / "mirror" / "pypi" / "files"
    before = {p.name: p.stat().st_mtime_ns for p in files.iterdir()}
    again = fill(tmp_path, store, ["xpulab-demo-app"])
    assert again.rc == 0 and again.changed == 0, again.output[-3000:]
    assert {p.name: p.stat().st_mtime_ns for p in files.iterdir()} == before

    # Nodes with glibc 2.39 accept lib 2.0: it replaces 1.0; the app wheel already there is kept as it is.
    newer = fill(tmp_path, store, ["xpulab-demo-app"], sandbox_pypi_glibc="2.39")
    assert newer.rc == 0 and newer.changed > 0, newer.output[-3000:]
    after = {p.name: p.stat().st_mtime_ns for p in files.iterdir()}
    assert sorted(after) == ["xpulab_demo_app-1.0-py3-none-any.whl", "xpulab_demo_lib-2.0-cp311-cp311-manylinux_2_39_x86_64.whl"]
    assert after["xpulab_demo_app-1.0-py3-none-any.whl"] == before["xpulab_demo_app-1.0-py3-none-any.whl"]
    simple = tmp_path / "mirror" / "pypi" / "simple"
    assert [h.split("#")[0] for h in links(simple / "xpulab-demo-lib" / "index.html")] == [
        "../../files/xpulab_demo_lib-2.0-cp311-cp311-manylinux_2_39_x86_64.whl"]

    # Another requirement set: the earlier projects leave the files and the index.
    other = fill(tmp_path, store, ["xpulab-demo-other"])
    assert other.rc == 0, other.output[-3000:]
    assert [p.name for p in files.iterdir()] == ["xpulab_demo_other-1.0-py3-none-any.whl"]
    assert sorted(p.name for p in simple.iterdir() if p.is_dir()) == ["xpulab-demo-other"]


def test_a_failed_download_leaves_the_mirror_not_current(tmp_path: Path, store: Path) -> None:
    failed = fill(tmp_path, store, ["xpulab-demo-absent"])
    assert failed.rc != 0
    assert not (tmp_path / "mirror" / "pypi" / ".xpulab-inputs.json").exists()
    # The next run with the same inputs tries again (and fails again), rather than passing as current.
    assert fill(tmp_path, store, ["xpulab-demo-absent"]).rc != 0

"""Unit tests for tools/fill-pypi-mirror.py: names, platform tags, pip output,
the PEP 503 pages, and whole fills with real pip on tiny local wheels."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "fill-pypi-mirror.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fill_pypi_mirror", TOOL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


fpm = _load()


# --------------------------------------------------------------------------
# Names


@pytest.mark.parametrize(("name", "normalized"), [
    ("torch", "torch"),
    ("MarkupSafe", "markupsafe"),
    ("typing_extensions", "typing-extensions"),
    ("zope.interface", "zope-interface"),
    ("Foo__Bar-._baz", "foo-bar-baz"),
    ("nvidia-cudnn-cu13", "nvidia-cudnn-cu13"),
])
def test_normalize_follows_pep_503(name: str, normalized: str) -> None:
    assert fpm.normalize(name) == normalized


@pytest.mark.parametrize(("filename", "project"), [
    ("torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl", "torch"),
    ("torch-2.14.1+xpu-cp311-cp311-linux_x86_64.whl", "torch"),
    ("nvidia_cudnn_cu13-9.24.0.43-py3-none-manylinux_2_27_x86_64.whl", "nvidia-cudnn-cu13"),
    ("markupsafe-3.0.4-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
     "markupsafe"),
    ("cuda_toolkit-13.0.3.0-py2.py3-none-any.whl", "cuda-toolkit"),
    ("demo-1.0-1build-py3-none-any.whl", "demo"),
    ("Zope.Interface-6.0.tar.gz", "zope-interface"),
    ("python-dateutil-2.9.0.zip", "python-dateutil"),
])
def test_project_of_file_names(filename: str, project: str) -> None:
    assert fpm.project_of(filename) == project


@pytest.mark.parametrize("filename", ["torch.whl", "torch-2.14.1.whl", "README.txt", "noversion.tar.gz"])
def test_project_of_rejects_other_names(filename: str) -> None:
    with pytest.raises(ValueError):
        fpm.project_of(filename)


def test_manylinux_platforms_cover_every_glibc_up_to_the_nodes() -> None:
    tags = fpm.manylinux_platforms("x86_64", "2.36")
    assert tags[0] == "manylinux_2_36_x86_64"
    assert tags[-1] == "manylinux1_x86_64"
    for needed in ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_18_x86_64",
                   "manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64"):
        assert needed in tags
    assert "manylinux_2_37_x86_64" not in tags
    assert len(tags) == len(set(tags)) == 32 + 3


@pytest.mark.parametrize("glibc", ["2", "3.1", "2.x", "2.4"])
def test_manylinux_platforms_refuse_bad_glibc(glibc: str) -> None:
    with pytest.raises(ValueError):
        fpm.manylinux_platforms("x86_64", glibc)


def test_targets_derive_the_abi_per_python() -> None:
    targets = fpm.build_targets(["3.11", "3.13"], "cp", None, "aarch64", "2.28", [])
    assert [(t.python_version, t.abi) for t in targets] == [("3.11", "cp311"), ("3.13", "cp313")]
    assert targets[0].platforms[0] == "manylinux_2_28_aarch64"
    args = targets[0].pip_args()
    assert args[:8] == ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
                        "--abi", "cp311", "--platform"]
    with pytest.raises(ValueError):
        fpm.build_targets(["3.11", "3.13"], "cp", "cp311", "x86_64", "2.36", [])
    assert fpm.build_targets(["3.11"], "cp", None, "x86_64", "2.36", ["linux_x86_64"])[0].platforms == ("linux_x86_64",)


# --------------------------------------------------------------------------
# pip output

PIP_OUTPUT = """\
Looking in links: /opt/wheels
Processing /opt/pypi/files/torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl
Collecting numpy
  File was already downloaded /srv/m/.files.staging/numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
WARNING: Location 'file:///opt/pypi-more/simple/typing-extensions/' is ignored: it is neither a file nor a directory.
Saved ./torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl
Saved /srv/m/.files.staging/typing_extensions-4.16.0-py3-none-any.whl
Saved ./torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl
Successfully downloaded torch numpy typing-extensions
"""


def test_parse_pip_download_lists_saved_and_reused_files() -> None:
    files, projects = fpm.parse_pip_download(PIP_OUTPUT)
    assert files == [
        "numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        "torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl",
        "typing_extensions-4.16.0-py3-none-any.whl",
    ]
    assert projects == ["numpy", "torch", "typing-extensions"]


def test_parse_pip_download_of_nothing() -> None:
    assert fpm.parse_pip_download("ERROR: No matching distribution found for torch==9\n") == ([], [])


# --------------------------------------------------------------------------
# PEP 503 pages

SHA = "ab" * 32


def test_root_page_links_every_project_once_sorted() -> None:
    page = fpm.render_root(["torch", "numpy", "torch", "typing-extensions"])
    assert re.findall(r'<a href="([^"]+)">([^<]+)</a>', page) == [
        ("numpy/", "numpy"), ("torch/", "torch"), ("typing-extensions/", "typing-extensions")]
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta name="pypi:repository-version" content="1.0">' in page


def test_project_page_links_files_with_sha256_and_requires_python() -> None:
    page = fpm.render_project("torch", [
        fpm.IndexEntry("torch-2.14.1+xpu-cp311-cp311-linux_x86_64.whl", SHA, ">=3.10"),
        fpm.IndexEntry("torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl", SHA),
    ])
    anchors = re.findall(r"<a ([^>]*)>([^<]+)</a>", page)
    assert [text for _, text in anchors] == [
        "torch-2.14.1+xpu-cp311-cp311-linux_x86_64.whl", "torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl"]
    assert anchors[0][0] == (f'href="../../files/torch-2.14.1%2Bxpu-cp311-cp311-linux_x86_64.whl#sha256={SHA}" '
                             'data-requires-python="&gt;=3.10"')
    assert anchors[1][0] == f'href="../../files/torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl#sha256={SHA}"'


def test_render_index_groups_files_by_normalized_project() -> None:
    pages = fpm.render_index([
        fpm.IndexEntry("typing_extensions-4.16.0-py3-none-any.whl", SHA),
        fpm.IndexEntry("MarkupSafe-3.0.4-cp311-cp311-manylinux_2_17_x86_64.whl", SHA),
        fpm.IndexEntry("markupsafe-3.0.3-cp311-cp311-manylinux_2_17_x86_64.whl", SHA),
    ])
    assert sorted(pages) == ["index.html", "markupsafe/index.html", "typing-extensions/index.html"]
    assert pages["markupsafe/index.html"].count("<a ") == 2
    assert 'href="typing-extensions/"' in pages["index.html"]


def test_sync_index_writes_only_differences_and_removes_stale_pages(tmp_path: Path) -> None:
    simple = tmp_path / "simple"
    pages = {"index.html": "root\n", "a/index.html": "a\n"}
    assert fpm.sync_index(simple, pages) is True
    assert fpm.sync_index(simple, pages) is False
    (simple / "gone").mkdir()
    (simple / "gone" / "index.html").write_text("old")
    (simple / "stray.html").write_text("old")
    assert fpm.sync_index(simple, pages, check=True) is True
    assert (simple / "gone").exists()
    assert fpm.sync_index(simple, pages) is True
    assert sorted(p.relative_to(simple).as_posix() for p in simple.rglob("*")) == ["a", "a/index.html", "index.html"]


# --------------------------------------------------------------------------
# Whole fills, with real pip on tiny wheels from a local directory


def make_wheel(directory: Path, name: str, version: str, tag: str = "py3-none-any",
               requires: tuple[str, ...] = (), requires_python: str | None = None) -> Path:
    """A minimal valid wheel (METADATA, WHEEL, RECORD)."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = directory / f"{dist}-{tag}.whl"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    if requires_python:
        metadata += f"Requires-Python: {requires_python}\n"
    py, abi, plat = tag.split("-")
    wheel = f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {py}-{abi}-{plat}\n"
    files = {f"{name.replace('-', '_')}/__init__.py": "", f"{dist}.dist-info/METADATA": metadata,
             f"{dist}.dist-info/WHEEL": wheel}
    record = "".join(f"{n},,\n" for n in files) + f"{dist}.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in {**files, f"{dist}.dist-info/RECORD": record}.items():
            archive.writestr(member, text)
    return path


@pytest.fixture
def wheels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local wheel store; pip sees only it (no config files, no PIP_* variables)."""
    for key in list(os.environ):
        if key.startswith("PIP_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    store = tmp_path / "store"
    store.mkdir()
    make_wheel(store, "demo-app", "1.0", requires=("dep.lib>=1",), requires_python=">=3.8")
    make_wheel(store, "dep-lib", "1.2")
    make_wheel(store, "fastthing", "2.0", tag="cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64")
    make_wheel(store, "newglibc", "1.0", tag="cp311-cp311-manylinux_2_39_x86_64")
    return store


def run_fill(dest: Path, store: Path, requirements: list[str], glibc: str = "2.36", **kwargs: Any) -> dict[str, Any]:
    targets = fpm.build_targets(["3.11"], "cp", None, "x86_64", glibc, [])
    result: dict[str, Any] = fpm.fill(dest, requirements, targets, ["--no-index", "--find-links", str(store)],
                                      sys.executable, **kwargs)
    return result


def pip_log_runs(dest: Path) -> int:
    log: Path = dest / fpm.LOG_NAME
    return log.read_text().count("$ ")


def test_fill_downloads_indexes_and_then_is_cached(tmp_path: Path, wheels: Path) -> None:
    dest = tmp_path / "mirror" / "pypi"
    first = run_fill(dest, wheels, ["demo-app==1.0", "fastthing"])
    assert first["changed"] is True and first["downloaded"] is True
    assert first["projects"] == ["demo-app", "dep-lib", "fastthing"]
    assert first["files"] == 3
    assert sorted(p.name for p in (dest / "files").iterdir()) == [
        "demo_app-1.0-py3-none-any.whl", "dep_lib-1.2-py3-none-any.whl",
        "fastthing-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"]
    assert first["bytes"] == sum(p.stat().st_size for p in (dest / "files").iterdir())
    page = (dest / "simple" / "dep-lib" / "index.html").read_text()
    digest = hashlib.sha256((dest / "files" / "dep_lib-1.2-py3-none-any.whl").read_bytes()).hexdigest()
    assert f'href="../../files/dep_lib-1.2-py3-none-any.whl#sha256={digest}"' in page
    assert 'data-requires-python="&gt;=3.8"' in (dest / "simple" / "demo-app" / "index.html").read_text()
    assert not (dest / fpm.STAGING_NAME).exists()
    log_mtime = (dest / fpm.LOG_NAME).stat().st_mtime_ns

    second = run_fill(dest, wheels, ["fastthing", "demo-app==1.0", "fastthing"])
    assert second["changed"] is False and second["downloaded"] is False
    assert (dest / fpm.LOG_NAME).stat().st_mtime_ns == log_mtime  # pip did not run


def test_fill_skips_wheels_the_nodes_glibc_cannot_load(tmp_path: Path, wheels: Path) -> None:
    with pytest.raises(fpm.FillError, match="No matching distribution found for newglibc"):
        run_fill(tmp_path / "m", wheels, ["newglibc"], glibc="2.36")
    assert run_fill(tmp_path / "m", wheels, ["newglibc"], glibc="2.39")["files"] == 1


def test_fill_prunes_files_no_longer_required(tmp_path: Path, wheels: Path) -> None:
    dest = tmp_path / "m"
    run_fill(dest, wheels, ["demo-app==1.0", "fastthing"])
    keep = (dest / "files" / "dep_lib-1.2-py3-none-any.whl").stat().st_ino
    result = run_fill(dest, wheels, ["demo-app==1.0"])
    assert result["changed"] is True and result["projects"] == ["demo-app", "dep-lib"]
    assert sorted(p.name for p in (dest / "files").iterdir()) == [
        "demo_app-1.0-py3-none-any.whl", "dep_lib-1.2-py3-none-any.whl"]
    assert not (dest / "simple" / "fastthing").exists()
    assert (dest / "files" / "dep_lib-1.2-py3-none-any.whl").stat().st_ino == keep  # reused, not fetched again
    assert "File was already downloaded" in (dest / fpm.LOG_NAME).read_text()


def test_fill_repairs_a_missing_file_and_a_deleted_index(tmp_path: Path, wheels: Path) -> None:
    dest = tmp_path / "m"
    run_fill(dest, wheels, ["demo-app==1.0"])
    (dest / "files" / "dep_lib-1.2-py3-none-any.whl").unlink()
    assert run_fill(dest, wheels, ["demo-app==1.0"])["downloaded"] is True
    assert (dest / "files" / "dep_lib-1.2-py3-none-any.whl").is_file()

    before = pip_log_runs(dest)
    (dest / "simple" / "dep-lib" / "index.html").unlink()
    (dest / "files" / "stray-0.1-py3-none-any.whl").write_text("x")
    repaired = run_fill(dest, wheels, ["demo-app==1.0"])
    assert repaired["changed"] is True and repaired["downloaded"] is False
    assert (dest / "simple" / "dep-lib" / "index.html").is_file()
    assert not (dest / "files" / "stray-0.1-py3-none-any.whl").exists()
    assert pip_log_runs(dest) == before
    assert run_fill(dest, wheels, ["demo-app==1.0"])["changed"] is False


def test_check_mode_reports_without_changing(tmp_path: Path, wheels: Path) -> None:
    dest = tmp_path / "m"
    assert run_fill(dest, wheels, ["demo-app==1.0"], check=True)["changed"] is True
    assert not (dest / "files").exists() and not (dest / "simple").exists()
    run_fill(dest, wheels, ["demo-app==1.0"])
    (dest / "simple" / "index.html").write_text("tampered")
    assert run_fill(dest, wheels, ["demo-app==1.0"], check=True)["changed"] is True
    assert (dest / "simple" / "index.html").read_text() == "tampered"
    assert run_fill(dest, wheels, ["demo-app==1.0"], check=True)["changed"] is True
    assert run_fill(dest, wheels, ["demo-app==1.0"])["changed"] is True
    assert run_fill(dest, wheels, ["demo-app==1.0"], check=True)["changed"] is False


def test_a_failed_download_leaves_the_mirror_as_it_was(tmp_path: Path, wheels: Path) -> None:
    dest = tmp_path / "m"
    run_fill(dest, wheels, ["demo-app==1.0"])
    snapshot = {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*")
                if p.is_file() and p.name != fpm.LOG_NAME}
    with pytest.raises(fpm.FillError, match=r"(?s)pip download failed.*No matching distribution found for demo-app==9"):
        run_fill(dest, wheels, ["demo-app==9"])
    after = {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*")
             if p.is_file() and p.name != fpm.LOG_NAME and fpm.STAGING_NAME not in p.parts}
    assert after == snapshot
    # The staging left behind by the failure is cleaned by the next run.
    assert run_fill(dest, wheels, ["demo-app==1.0"])["changed"] is True
    assert not (dest / fpm.STAGING_NAME).exists()


def test_pip_installs_from_the_generated_index(tmp_path: Path, wheels: Path) -> None:
    """The pages are a working PEP 503 index: pip resolves from it and checks the hashes."""
    dest = tmp_path / "m"
    run_fill(dest, wheels, ["demo-app==1.0", "fastthing"])
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
           "--only-binary=:all:", "--python-version", "3.11", "--platform", "manylinux_2_17_x86_64",
           "--index-url", (dest / "simple").as_uri(), "--dest", str(out), "demo-app", "fastthing"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (dest / "files").iterdir())

    page = dest / "simple" / "dep-lib" / "index.html"
    page.write_text(re.sub(r"sha256=[0-9a-f]{64}", "sha256=" + "0" * 64, page.read_text()))
    bad = subprocess.run([*cmd[:-2], "--dest", str(tmp_path / "out2"), "dep-lib"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode != 0 and "HASHES" in bad.stderr.upper()


def test_main_prints_json_and_fails_with_a_message(tmp_path: Path, wheels: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--dest", str(tmp_path / "m"), "--pip-arg=--no-index", f"--pip-arg=--find-links={wheels}", "demo-app"]
    assert fpm.main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["changed"] is True and result["projects"] == ["demo-app", "dep-lib"]
    assert fpm.main(args) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False
    assert fpm.main([*args[:-1], "--glibc", "2.x", "demo-app"]) == 1
    assert "glibc version must look like 2.36" in capsys.readouterr().err

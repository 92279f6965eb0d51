#!/usr/bin/env python3
"""Fill a directory with wheels for the nodes' Python and serve them as a PEP 503 index.

    fill-pypi-mirror.py --dest MIRROR/pypi --python-version 3.11 torch==2.14.1 numpy

runs ``pip download`` on the controller (with the controller's own pip
configuration, so whatever index or local wheel store it is set up for)
for the target Python, implementation, ABI and manylinux platforms, keeps
exactly the resolved files in ``DEST/files`` and writes::

    DEST/simple/index.html                     one link per project
    DEST/simple/<normalized-name>/index.html   one link per file, #sha256=...

A stamp (``DEST/.xpulab-fill.json``) records the inputs and every file with
its size and sha256. When the inputs are unchanged and every file is still
there, nothing is downloaded or rewritten. The result is one JSON object on
stdout, ``{"changed": ..., ...}``, for Ansible's ``changed_when``.

Downloads go to a staging directory first (files already in the mirror are
hard-linked into it, so pip does not fetch them again); only a complete,
successful ``pip download`` reaches ``DEST/files``. A lock file serialises
concurrent runs on the same directory.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import Any, TypedDict

from xpulab_fsutil import locked

STAMP_NAME = ".xpulab-fill.json"
LOCK_NAME = ".xpulab-fill.lock"
LOG_NAME = ".xpulab-fill.log"
STAGING_NAME = ".files.staging"
FILES_DIR = "files"
SIMPLE_DIR = "simple"
STAMP_VERSION = 1
DIST_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")

# glibc minor versions that have a legacy manylinux alias (PEP 600).
LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


class FileRecord(TypedDict):
    size: int
    mtime_ns: int
    sha256: str
    requires_python: str | None


class FillError(Exception):
    """A failure to report to the caller (exit code 1, message on stderr)."""


# --------------------------------------------------------------------------
# Names and files


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_of(filename: str) -> str:
    """Normalized project name of a wheel or sdist file name.

    Wheels are ``{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl``
    (PEP 427; the name has no dash); sdists are ``{name}-{version}.tar.gz``
    (the version has no dash).
    """
    if filename.endswith(".whl"):
        parts = filename[: -len(".whl")].split("-")
        if len(parts) not in (5, 6) or not all(parts):
            raise ValueError(f"not a wheel file name: {filename}")
        return normalize(parts[0])
    for suffix in DIST_SUFFIXES:
        if filename.endswith(suffix):
            stem = filename[: -len(suffix)]
            name, sep, version = stem.rpartition("-")
            if sep and name and version:
                return normalize(name)
    raise ValueError(f"not a distribution file name: {filename}")


def is_distribution(filename: str) -> bool:
    return not filename.startswith(".") and filename.endswith(DIST_SUFFIXES)


def manylinux_platforms(arch: str, glibc: str) -> list[str]:
    """Every manylinux tag a system with this glibc accepts, newest first.

    pip's --platform takes tags literally (it does not add the older
    manylinux tags a real system would accept), so they are listed here:
    manylinux_2_<minor> down to 2_5, plus the legacy aliases.
    """
    match = re.fullmatch(r"2\.(\d+)", glibc)
    if not match:
        raise ValueError(f"glibc version must look like 2.36, got {glibc!r}")
    newest = int(match.group(1))
    if newest < 5:
        raise ValueError(f"glibc {glibc} is older than any manylinux tag")
    tags: list[str] = []
    for minor in range(newest, 4, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        if minor in LEGACY_MANYLINUX:
            tags.append(f"{LEGACY_MANYLINUX[minor]}_{arch}")
    return tags


def default_abi(implementation: str, python_version: str) -> str:
    """cp311 for CPython 3.11."""
    return f"{implementation}{python_version.replace('.', '')}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def requires_python_of(path: Path) -> str | None:
    """Requires-Python of a wheel (from its METADATA), None when absent or unreadable."""
    if not path.name.endswith(".whl"):
        return None
    try:
        with zipfile.ZipFile(path) as wheel:
            names = [n for n in wheel.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            if len(names) != 1:
                return None
            headers = HeaderParser().parsestr(wheel.read(names[0]).decode("utf-8", "replace"))
    except (OSError, zipfile.BadZipFile):
        return None
    value = headers.get("Requires-Python")
    return value.strip() if value else None


# --------------------------------------------------------------------------
# pip output


def parse_pip_download(output: str) -> tuple[list[str], list[str]]:
    """(file names, normalized project names) that a ``pip download`` run resolved.

    Files come from "Saved <path>" and "File was already downloaded <path>";
    projects from the closing "Successfully downloaded a b c" line.
    """
    files: list[str] = []
    projects: list[str] = []
    for raw in output.splitlines():
        line = raw.strip()
        for prefix in ("Saved ", "File was already downloaded "):
            if line.startswith(prefix):
                name = os.path.basename(line[len(prefix):].strip())
                if name and name not in files:
                    files.append(name)
        if line.startswith("Successfully downloaded "):
            projects.extend(normalize(p) for p in line[len("Successfully downloaded "):].split())
    return files, sorted(set(projects))


# --------------------------------------------------------------------------
# Index


@dataclass(frozen=True)
class IndexEntry:
    filename: str
    sha256: str
    requires_python: str | None = None


HEADER = """<!DOCTYPE html>
<html>
  <head>
    <meta name="pypi:repository-version" content="1.0">
    <title>{title}</title>
  </head>
  <body>
    <h1>{title}</h1>
"""
FOOTER = """  </body>
</html>
"""


def render_root(projects: Iterable[str]) -> str:
    """The root page of a PEP 503 simple index."""
    links = "".join(
        f'    <a href="{urllib.parse.quote(p)}/">{html.escape(p)}</a><br>\n' for p in sorted(set(projects))
    )
    return HEADER.format(title="Simple index") + links + FOOTER


def render_project(project: str, entries: Iterable[IndexEntry], files_href: str = "../../files/") -> str:
    """A project page: one anchor per file, with a #sha256= fragment."""
    lines = []
    for entry in sorted(entries, key=lambda e: e.filename):
        href = f"{files_href}{urllib.parse.quote(entry.filename)}#sha256={entry.sha256}"
        attrs = f'href="{html.escape(href)}"'
        if entry.requires_python:
            attrs += f' data-requires-python="{html.escape(entry.requires_python)}"'
        lines.append(f"    <a {attrs}>{html.escape(entry.filename)}</a><br>\n")
    return HEADER.format(title=f"Links for {html.escape(project)}") + "".join(lines) + FOOTER


def render_index(entries: Iterable[IndexEntry]) -> dict[str, str]:
    """Relative path under simple/ -> page content, for a set of files."""
    by_project: dict[str, list[IndexEntry]] = {}
    for entry in entries:
        by_project.setdefault(project_of(entry.filename), []).append(entry)
    pages = {"index.html": render_root(by_project)}
    for project, project_entries in by_project.items():
        pages[f"{project}/index.html"] = render_project(project, project_entries)
    return pages


def write_atomic(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sync_index(simple_dir: Path, pages: dict[str, str], check: bool = False) -> bool:
    """Make simple_dir hold exactly these pages; True if anything differed."""
    changed = False
    for rel, content in sorted(pages.items()):
        path = simple_dir / rel
        try:
            current = path.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != content:
            changed = True
            if not check:
                write_atomic(path, content)
    if simple_dir.is_dir():
        wanted_dirs = {rel.split("/", 1)[0] for rel in pages if "/" in rel}
        for child in sorted(simple_dir.iterdir()):
            stale = child.name not in wanted_dirs if child.is_dir() else child.name not in pages
            if stale:
                changed = True
                if not check:
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
    return changed


# --------------------------------------------------------------------------
# Stamp and fill


@dataclass(frozen=True)
class Target:
    python_version: str
    implementation: str
    abi: str
    platforms: tuple[str, ...]

    def pip_args(self) -> list[str]:
        args = [
            "--only-binary=:all:",
            "--python-version", self.python_version,
            "--implementation", self.implementation,
            "--abi", self.abi,
        ]
        for platform in self.platforms:
            args += ["--platform", platform]
        return args


def inputs_of(requirements: Sequence[str], targets: Sequence[Target], pip_args: Sequence[str]) -> dict[str, Any]:
    """What the stamp keys on: the same inputs give the same mirror."""
    return {
        "stamp_version": STAMP_VERSION,
        "requirements": sorted(set(requirements)),
        "targets": [
            {"python_version": t.python_version, "implementation": t.implementation,
             "abi": t.abi, "platforms": list(t.platforms)}
            for t in targets
        ],
        "pip_args": list(pip_args),
    }


def read_stamp(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def files_intact(files_dir: Path, records: dict[str, FileRecord]) -> bool:
    """Every recorded file is present with its recorded size."""
    for name, record in records.items():
        try:
            if (files_dir / name).stat().st_size != record["size"]:
                return False
        except OSError:
            return False
    return bool(records)


def entries_of(records: dict[str, FileRecord]) -> list[IndexEntry]:
    return [IndexEntry(name, r["sha256"], r.get("requires_python")) for name, r in records.items()]


def record_files(directory: Path, names: Iterable[str], known: dict[str, FileRecord]) -> dict[str, FileRecord]:
    """Size, mtime, sha256 and Requires-Python of files; reuse known ones that are unchanged."""
    records: dict[str, FileRecord] = {}
    for name in sorted(names):
        stat = (directory / name).stat()
        old = known.get(name)
        if old and old["size"] == stat.st_size and old["mtime_ns"] == stat.st_mtime_ns:
            records[name] = old
            continue
        records[name] = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": sha256_of(directory / name),
            "requires_python": requires_python_of(directory / name),
        }
    return records


def link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def run_pip_download(pip_python: str, staging: Path, requirements: Sequence[str], target: Target,
                     pip_args: Sequence[str], log: Path) -> tuple[list[str], list[str]]:
    """pip download into staging for one target; (files, projects) it resolved."""
    cmd = [pip_python, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
           "--progress-bar", "off", "--dest", str(staging), *target.pip_args(), *pip_args, *requirements]
    proc = subprocess.run(cmd, cwd=staging, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, check=False)
    with log.open("a", encoding="utf-8") as handle:
        handle.write("$ " + " ".join(cmd) + "\n" + proc.stdout + f"[exit {proc.returncode}]\n")
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-25:])
        raise FillError(f"pip download failed for Python {target.python_version} (exit {proc.returncode}); "
                        f"full log: {log}\n{tail}")
    files, projects = parse_pip_download(proc.stdout)
    missing = [f for f in files if not (staging / f).is_file()]
    found = sorted({project_of(f) for f in files})
    if not files or missing or found != projects:
        raise FillError(f"could not read what pip download resolved (files {files}, missing {missing}, "
                        f"projects {projects}); full log: {log}")
    return files, projects


def fill(dest: Path, requirements: Sequence[str], targets: Sequence[Target], pip_args: Sequence[str] = (),
         pip_python: str = sys.executable, force: bool = False, check: bool = False) -> dict[str, Any]:
    """Bring dest up to date; return the report printed as JSON."""
    started = time.monotonic()
    files_dir, simple_dir = dest / FILES_DIR, dest / SIMPLE_DIR
    inputs = inputs_of(requirements, targets, pip_args)
    with locked(dest / LOCK_NAME):
        stamp = read_stamp(dest / STAMP_NAME)
        records: dict[str, FileRecord] = stamp.get("files", {}) if isinstance(stamp.get("files"), dict) else {}
        cached = not force and stamp.get("inputs") == inputs and files_intact(files_dir, records)
        changed = False
        if not cached:
            changed = True
            if check:
                return report(dest, True, False, records, started, check)
            records = download(dest, requirements, targets, pip_args, pip_python, records)
        # Keep exactly the recorded files and pages; a no-op when already so.
        strays = [p for p in files_dir.iterdir() if p.name not in records] if files_dir.is_dir() else []
        leftovers = [p for p in (dest / STAGING_NAME,) if p.exists()]
        changed |= bool(strays or leftovers)
        changed |= sync_index(simple_dir, render_index(entries_of(records)), check)
        if not check:
            for path in strays + leftovers:
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            if not cached:
                write_atomic(dest / STAMP_NAME, json.dumps(
                    {"inputs": inputs, "files": records,
                     "filled_seconds": round(time.monotonic() - started, 1)}, indent=1, sort_keys=True) + "\n")
        return report(dest, changed, not cached, records, started, check)


def download(dest: Path, requirements: Sequence[str], targets: Sequence[Target], pip_args: Sequence[str],
             pip_python: str, known: dict[str, FileRecord]) -> dict[str, FileRecord]:
    """pip download every target into a fresh staging dir, then move the result into files/."""
    files_dir, staging = dest / FILES_DIR, dest / STAGING_NAME
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    files_dir.mkdir(parents=True, exist_ok=True)
    for existing in files_dir.iterdir():
        if existing.is_file() and is_distribution(existing.name):
            link_or_copy(existing, staging / existing.name)
    log = dest / LOG_NAME
    log.write_text("", encoding="utf-8")
    resolved: list[str] = []
    for target in targets:
        files, _ = run_pip_download(pip_python, staging, requirements, target, pip_args, log)
        resolved += [f for f in files if f not in resolved]
    records = record_files(staging, resolved, {n: r for n, r in known.items() if (files_dir / n).is_file()})
    for name in resolved:
        os.chmod(staging / name, 0o644)
        os.replace(staging / name, files_dir / name)
    shutil.rmtree(staging)
    return records


def report(dest: Path, changed: bool, downloaded: bool, records: dict[str, FileRecord], started: float,
           check: bool) -> dict[str, Any]:
    return {
        "changed": changed,
        "downloaded": downloaded,
        "check_mode": check,
        "dest": str(dest),
        "index": str(dest / SIMPLE_DIR),
        "projects": sorted({project_of(n) for n in records}),
        "files": len(records),
        "bytes": sum(r["size"] for r in records.values()),
        "seconds": round(time.monotonic() - started, 1),
    }


# --------------------------------------------------------------------------
# Command line


def build_targets(python_versions: Sequence[str], implementation: str, abi: str | None, arch: str,
                  glibc: str, platforms: Sequence[str]) -> list[Target]:
    tags = tuple(platforms) if platforms else tuple(manylinux_platforms(arch, glibc))
    if abi and len(python_versions) > 1:
        raise ValueError("--abi applies to one --python-version; leave it out to derive it per version")
    return [Target(v, implementation, abi or default_abi(implementation, v), tags) for v in python_versions]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("requirements", nargs="+", help="requirement specifiers, e.g. torch==2.14.1 numpy")
    parser.add_argument("--dest", required=True, type=Path, help="mirror directory (gets files/ and simple/)")
    parser.add_argument("--python-version", action="append", dest="python_versions",
                        help="target Python major.minor, repeatable (default 3.11)")
    parser.add_argument("--implementation", default="cp")
    parser.add_argument("--abi", help="default: <implementation><version without dot>, e.g. cp311")
    parser.add_argument("--arch", default="x86_64")
    parser.add_argument("--glibc", default="2.36", help="nodes' glibc; every manylinux tag up to it is accepted")
    parser.add_argument("--platform", action="append", default=[], help="explicit platform tags (replace --glibc)")
    parser.add_argument("--pip-python", default=sys.executable, help="Python whose pip downloads")
    parser.add_argument("--pip-arg", action="append", default=[], help="extra pip download argument, repeatable")
    parser.add_argument("--force", action="store_true", help="run pip download again even when the stamp matches (files already present are not fetched again)")
    parser.add_argument("--check", action="store_true", help="only tell whether a run would change anything")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        targets = build_targets(args.python_versions or ["3.11"], args.implementation, args.abi, args.arch,
                                args.glibc, args.platform)
        result = fill(args.dest.resolve(), args.requirements, targets, args.pip_arg, args.pip_python,
                      args.force, args.check)
    except (FillError, ValueError, OSError) as error:
        print(f"fill-pypi-mirror: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

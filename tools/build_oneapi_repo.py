#!/usr/bin/env python3
"""Build the sandbox's signed apt repository that stands in for Intel's oneAPI one.

The sandbox cannot reach apt.repos.intel.com, so the oneapi role is exercised
against this local repository instead. It holds one stand-in package per
Deep Learning Essentials version, named as Intel names them
(intel-deep-learning-essentials-<version>), that installs only a small
/opt/intel/oneapi/setvars.sh. None of it is Intel software.

Layout (what `deb <url> all main` expects):

    <repo>/dists/all/{Release,InRelease,Release.gpg}
    <repo>/dists/all/main/binary-<arch>/Packages{,.gz}
    <repo>/pool/main/<package>_<version>_all.deb
    <repo>/GPG-PUB-KEY-XPULAB-SANDBOX.PUB    ASCII-armored signing key
    <repo>/KEY_FINGERPRINT                   its fingerprint, one line
    <repo>/.xpulab-repo.json                 inputs digest, written last

The signing key lives in a throwaway GnuPG home (no passphrase) outside the
served directory and is generated once. The repository is rebuilt only when
its inputs change (this file, the versions, suite, component, architectures,
signing key) or a file it lists is missing; the new tree is built beside the
old one and swapped in by rename. Prints one JSON object: {"changed": ...}.

Needs gpg and gpg-agent (Debian package gnupg) and dpkg-deb (dpkg).
"""

from __future__ import annotations

import argparse
import email.utils
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xpulab_fsutil import locked

PACKAGE_PREFIX = "intel-deep-learning-essentials-"
# Bump to rebuild every stand-in (changes the .deb versions too).
PACKAGE_REVISION = "0xpulab1"
KEY_UID = "xpulab sandbox oneAPI stand-in repository <xpulab-sandbox@localhost.invalid>"
PUBLIC_KEY_NAME = "GPG-PUB-KEY-XPULAB-SANDBOX.PUB"
FINGERPRINT_NAME = "KEY_FINGERPRINT"
STAMP_NAME = ".xpulab-repo.json"
VIRTUAL_PACKAGE = "xpulab-oneapi-standin"
ONEAPI_ROOT = "/opt/intel/oneapi"
# Fixed timestamps inside the .deb files, so a rebuild of the same inputs
# yields the same bytes (dpkg-deb honours SOURCE_DATE_EPOCH).
SOURCE_DATE_EPOCH = 1767225600  # 2026-01-01T00:00:00Z
VERSION_RE = re.compile(r"^\d{4}\.\d+$")
ARCH_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
SUITE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RepoError(Exception):
    """A failure with a message meant for the user."""


@dataclass(frozen=True)
class RepoSpec:
    """What the repository holds; its digest decides whether to rebuild."""

    versions: tuple[str, ...]
    suite: str = "all"
    component: str = "main"
    architectures: tuple[str, ...] = ("amd64",)

    def __post_init__(self) -> None:
        if not self.versions:
            raise RepoError("no DLE version given: pass --version at least once")
        for version in self.versions:
            if not VERSION_RE.match(version):
                raise RepoError(f"DLE version {version!r} does not look like YYYY.N (e.g. 2026.1)")
        for arch in self.architectures:
            if not ARCH_RE.match(arch):
                raise RepoError(f"bad architecture {arch!r}")
        for name, value in (("suite", self.suite), ("component", self.component)):
            if not SUITE_RE.match(value):
                raise RepoError(f"bad {name} {value!r}")

    def package_name(self, version: str) -> str:
        return f"{PACKAGE_PREFIX}{version}"

    def package_version(self, version: str) -> str:
        return f"{version}.0-{PACKAGE_REVISION}"

    def deb_path(self, version: str) -> str:
        """Path of a package's .deb relative to the repository root."""
        return f"pool/{self.component}/{self.package_name(version)}_{self.package_version(version)}_all.deb"

    def index_paths(self) -> list[str]:
        """Index files relative to dists/<suite>/, as listed in Release."""
        return [
            f"{self.component}/binary-{arch}/{name}"
            for arch in self.architectures
            for name in ("Packages", "Packages.gz")
        ]

    def files(self) -> list[str]:
        """Every file the built repository must have, relative to its root."""
        dists = f"dists/{self.suite}"
        return (
            [self.deb_path(v) for v in self.versions]
            + [f"{dists}/{p}" for p in self.index_paths()]
            + [f"{dists}/Release", f"{dists}/InRelease", f"{dists}/Release.gpg", PUBLIC_KEY_NAME, FINGERPRINT_NAME]
        )


def tool_digest() -> str:
    """sha256 of this file: a change to how the repository is built rebuilds it."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def inputs_digest(spec: RepoSpec, fingerprint: str, tool: str) -> str:
    data = {
        "tool": tool,
        "versions": sorted(spec.versions),
        "suite": spec.suite,
        "component": spec.component,
        "architectures": sorted(spec.architectures),
        "revision": PACKAGE_REVISION,
        "fingerprint": fingerprint,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def is_current(repo: Path, spec: RepoSpec, digest: str) -> bool:
    """True when the repository was built from these inputs and is complete."""
    try:
        stamp = json.loads((repo / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(stamp, dict) or stamp.get("digest") != digest:
        return False
    return all((repo / name).is_file() for name in spec.files())


# ---------------------------------------------------------------------------
# GnuPG


class Gpg:
    """gpg on a dedicated home directory (the sandbox signing key's)."""

    def __init__(self, home: Path, gpg: str = "gpg") -> None:
        self.home = home
        self.gpg = gpg

    def run(self, *args: str, stdin: bytes | None = None) -> bytes:
        cmd = [self.gpg, "--batch", "--no-tty", "--homedir", str(self.home), *args]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
        if proc.returncode != 0:
            raise RepoError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stderr.decode(errors='replace')}")
        return proc.stdout

    def ensure_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)

    def secret_fingerprint(self, uid: str) -> str | None:
        """Fingerprint of the secret key with this user ID, if present."""
        out = self.run("--with-colons", "--list-secret-keys").decode()
        return find_fingerprint(out, uid, primary="sec")

    def generate(self, uid: str) -> str:
        self.run("--passphrase", "", "--pinentry-mode", "loopback",
                 "--quick-generate-key", uid, "ed25519", "sign", "never")
        fpr = self.secret_fingerprint(uid)
        if fpr is None:
            raise RepoError(f"generated a key for {uid!r} but cannot find it in {self.home}")
        return fpr

    def ensure_key(self, uid: str) -> tuple[str, bool]:
        """The signing key's fingerprint, and whether it was generated now."""
        self.ensure_home()
        fpr = self.secret_fingerprint(uid)
        if fpr is not None:
            return fpr, False
        return self.generate(uid), True

    def kill_agent(self) -> None:
        gpgconf = shutil.which("gpgconf")
        if gpgconf:
            subprocess.run([gpgconf, "--homedir", str(self.home), "--kill", "gpg-agent"],
                           capture_output=True, check=False)


def find_fingerprint(colons: str, uid: str, primary: str = "pub") -> str | None:
    """In `gpg --with-colons` output, the fingerprint of the primary key
    (record type `primary`) that carries user ID `uid`."""
    current: str | None = None
    expect_fpr = False
    for line in colons.splitlines():
        fields = line.split(":")
        kind = fields[0]
        if kind == primary:
            current, expect_fpr = None, True
        elif kind in ("sub", "ssb"):
            expect_fpr = False
        elif kind == "fpr" and expect_fpr and len(fields) > 9:
            current, expect_fpr = fields[9], False
        elif kind == "uid" and current is not None and len(fields) > 9 and fields[9] == uid:
            return current
    return None


# ---------------------------------------------------------------------------
# Packages


def setvars_script(version: str) -> str:
    """The stand-in's setvars.sh: sourced by build steps, exports a few
    variables, changes nothing else."""
    return f"""\
# xpulab sandbox stand-in for Intel oneAPI Deep Learning Essentials {version}.
# NOT Intel software: the xpulab sandbox cannot reach Intel's repository, so
# this package only lets the oneapi role's repository, key, version selection
# and setvars.sh exposure be tested. Source it: . {ONEAPI_ROOT}/setvars.sh
# Arguments (such as --force) are accepted and ignored, as a hint of the real one.
export ONEAPI_ROOT={ONEAPI_ROOT}
export XPULAB_ONEAPI_STANDIN=1
export XPULAB_ONEAPI_STANDIN_VERSION={version}
export SETVARS_COMPLETED=1
echo ":: xpulab sandbox stand-in for oneAPI DLE {version} (not Intel software): environment set ::"
"""


def control_text(spec: RepoSpec, version: str) -> str:
    return f"""\
Package: {spec.package_name(version)}
Version: {spec.package_version(version)}
Architecture: all
Maintainer: xpulab sandbox <xpulab-sandbox@localhost.invalid>
Section: devel
Priority: optional
Provides: {VIRTUAL_PACKAGE}
Conflicts: {VIRTUAL_PACKAGE}
Replaces: {VIRTUAL_PACKAGE}
Description: xpulab sandbox stand-in for Intel oneAPI Deep Learning Essentials {version}
 NOT Intel software. Built by the xpulab sandbox tooling (tools/build_oneapi_repo.py)
 for a local signed apt repository that stands in for Intel's oneAPI repository,
 which the sandbox cannot reach. It installs only {ONEAPI_ROOT}/setvars.sh, which
 exports ONEAPI_ROOT, XPULAB_ONEAPI_STANDIN=1 and XPULAB_ONEAPI_STANDIN_VERSION.
 The stand-ins conflict with each other because each ships that file.
"""


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def build_deb(spec: RepoSpec, version: str, work: Path, dest: Path, dpkg_deb: str = "dpkg-deb") -> None:
    """Build one stand-in package with dpkg-deb, reproducibly."""
    tree = work / spec.package_name(version)
    _write(tree / "DEBIAN" / "control", control_text(spec, version), 0o644)
    _write(tree / ONEAPI_ROOT.lstrip("/") / "setvars.sh", setvars_script(version), 0o755)
    _write(tree / "usr" / "share" / "doc" / spec.package_name(version) / "README.xpulab",
           f"xpulab sandbox stand-in for Intel oneAPI Deep Learning Essentials {version}; not Intel software.\n",
           0o644)
    for path in [tree, *tree.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
        os.utime(path, (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH), follow_symlinks=False)
    dest.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(SOURCE_DATE_EPOCH))
    proc = subprocess.run([dpkg_deb, "--root-owner-group", "-Zxz", "--build", str(tree), str(dest)],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RepoError(f"dpkg-deb --build {tree} failed:\n{proc.stderr}")


def deb_control(deb: Path, dpkg_deb: str = "dpkg-deb") -> str:
    """The control paragraph of a .deb, as dpkg-deb reads it."""
    proc = subprocess.run([dpkg_deb, "--field", str(deb)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RepoError(f"dpkg-deb --field {deb} failed:\n{proc.stderr}")
    return proc.stdout.rstrip("\n")


def file_hashes(data: bytes) -> dict[str, str]:
    return {"MD5Sum": hashlib.md5(data).hexdigest(),  # noqa: S324 - apt index field, not security
            "SHA256": hashlib.sha256(data).hexdigest()}


def packages_index(entries: Sequence[tuple[str, str, bytes]]) -> str:
    """A Packages file from (control paragraph, Filename, .deb bytes) entries."""
    paragraphs = []
    for control, filename, data in entries:
        hashes = file_hashes(data)
        paragraphs.append(
            f"{control}\nFilename: {filename}\nSize: {len(data)}\n"
            f"MD5sum: {hashes['MD5Sum']}\nSHA256: {hashes['SHA256']}\n"
        )
    return "\n".join(paragraphs)


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no name and a zero mtime, so equal input gives equal output."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def release_text(spec: RepoSpec, indexes: dict[str, bytes], date: float) -> str:
    """The Release file of dists/<suite>, listing every index with its hashes."""
    lines = [
        "Origin: xpulab sandbox",
        "Label: xpulab sandbox stand-in for Intel oneAPI (not Intel software)",
        f"Suite: {spec.suite}",
        f"Codename: {spec.suite}",
        f"Date: {email.utils.formatdate(date, usegmt=True)}",
        f"Architectures: {' '.join(spec.architectures)}",
        f"Components: {spec.component}",
        "Description: local signed apt repository of the xpulab sandbox; stand-in packages only",
    ]
    for field in ("MD5Sum", "SHA256"):
        lines.append(f"{field}:")
        for name in sorted(indexes):
            data = indexes[name]
            lines.append(f" {file_hashes(data)[field]} {len(data):>8} {name}")
    return "\n".join(lines) + "\n"


def build_tree(spec: RepoSpec, gpg: Gpg, fingerprint: str, out: Path, now: float,
               dpkg_deb: str = "dpkg-deb") -> None:
    """Build the whole repository into the empty directory `out`."""
    entries = []
    with tempfile.TemporaryDirectory(prefix="xpulab-oneapi-pkgtree.") as work:
        for version in spec.versions:
            rel = spec.deb_path(version)
            build_deb(spec, version, Path(work), out / rel, dpkg_deb)
            entries.append((deb_control(out / rel, dpkg_deb), rel, (out / rel).read_bytes()))
    packages = packages_index(entries).encode()
    dists = out / "dists" / spec.suite
    indexes: dict[str, bytes] = {}
    for arch in spec.architectures:
        indexes[f"{spec.component}/binary-{arch}/Packages"] = packages
        indexes[f"{spec.component}/binary-{arch}/Packages.gz"] = gzip_bytes(packages)
    for name, data in indexes.items():
        (dists / name).parent.mkdir(parents=True, exist_ok=True)
        (dists / name).write_bytes(data)
    release = dists / "Release"
    release.write_text(release_text(spec, indexes, now))
    sign = ("--local-user", fingerprint, "--digest-algo", "SHA512", "--yes")
    gpg.run(*sign, "--clearsign", "--output", str(dists / "InRelease"), str(release))
    gpg.run(*sign, "--armor", "--detach-sign", "--output", str(dists / "Release.gpg"), str(release))
    (out / PUBLIC_KEY_NAME).write_bytes(gpg.run("--armor", "--export", fingerprint))
    (out / FINGERPRINT_NAME).write_text(fingerprint + "\n")


def swap_in(new: Path, repo: Path) -> None:
    """Replace `repo` by `new` with renames; a reader never sees a half-built tree."""
    old = repo.with_name(repo.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if repo.exists():
        repo.rename(old)
    new.rename(repo)
    if old.exists():
        shutil.rmtree(old)


def ensure_repo(repo: Path, gnupghome: Path, spec: RepoSpec, force: bool = False,
                now: float | None = None) -> dict[str, object]:
    """Build the repository unless it is current. Returns the JSON report."""
    for tool, package in (("gpg", "gnupg"), ("gpg-agent", "gnupg"), ("dpkg-deb", "dpkg")):
        if shutil.which(tool) is None:
            raise RepoError(f"{tool} not found: install the Debian package {package} on the controller")
    repo = repo.absolute()
    gpg = Gpg(gnupghome.absolute())
    with locked(gpg.home.with_name(gpg.home.name + ".lock")):
        try:
            fingerprint, key_generated = gpg.ensure_key(KEY_UID)
            digest = inputs_digest(spec, fingerprint, tool_digest())
            report: dict[str, object] = {
                "repo": str(repo),
                "fingerprint": fingerprint,
                "key_generated": key_generated,
                "packages": {spec.package_name(v): spec.package_version(v) for v in spec.versions},
                "digest": digest,
            }
            if not force and is_current(repo, spec, digest):
                return {"changed": False, **report}
            repo.parent.mkdir(parents=True, exist_ok=True)
            new = Path(tempfile.mkdtemp(prefix=f".{repo.name}.new.", dir=repo.parent))
            try:
                build_tree(spec, gpg, fingerprint, new, time.time() if now is None else now)
                (new / STAMP_NAME).write_text(json.dumps({"digest": digest, "fingerprint": fingerprint,
                                                          "packages": report["packages"]},
                                                         indent=2, sort_keys=True) + "\n")
                for path in [new, *new.rglob("*")]:
                    path.chmod(0o755 if path.is_dir() else 0o644)
                swap_in(new, repo)
            finally:
                if new.exists():
                    shutil.rmtree(new)
            return {"changed": True, **report}
        finally:
            gpg.kill_agent()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, required=True, help="repository root (served by the mirror)")
    parser.add_argument("--gnupghome", type=Path, required=True,
                        help="GnuPG home of the signing key (keep it outside the served tree)")
    parser.add_argument("--version", dest="versions", action="append", required=True,
                        help="DLE version to provide a stand-in for, e.g. 2026.1 (repeatable)")
    parser.add_argument("--suite", default="all")
    parser.add_argument("--component", default="main")
    parser.add_argument("--arch", dest="architectures", action="append",
                        help="architecture index to publish (repeatable; default amd64)")
    parser.add_argument("--force", action="store_true", help="rebuild even when current")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        spec = RepoSpec(versions=tuple(dict.fromkeys(args.versions)), suite=args.suite,
                        component=args.component,
                        architectures=tuple(dict.fromkeys(args.architectures or ["amd64"])))
        report = ensure_repo(args.repo, args.gnupghome, spec, force=args.force)
    except RepoError as exc:
        print(json.dumps({"changed": False, "failed": True, "msg": str(exc)}))
        return 1
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

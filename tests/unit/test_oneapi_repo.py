"""The sandbox's signed oneAPI stand-in repository (sandbox/playbooks/tasks/mirror_oneapi.yml), built for real.

The task file runs in a localhost play against a temporary mirror and cache;
the result is checked the way apt and the oneapi role use it: signatures with
gpgv against the exported key, the indexes against the files they list, apt
itself reading the repository through a signed-by keyring, and the stand-in's
setvars.sh.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from playbook_runner import ROOT, Run, run_tasks

# Needs on the controller (make deps): gnupg, dpkg, apt-utils (apt-ftparchive), util-linux (flock).
TASKS = "mirror_oneapi.yml"
PREFIX = "intel-deep-learning-essentials-"
# The versions the repository must hold: every DLE version of the oneapi role's table.
VERSIONS = sorted(set(yaml.safe_load((ROOT / "roles/oneapi/defaults/main.yml").read_text())["oneapi_dle_versions"].values()))


def repo_of(work: Path) -> Path:
    return work / "mirror" / "oneapi"


def paragraphs(text: str) -> list[dict[str, str]]:
    """Deb822 paragraphs (continuation lines joined with newlines)."""
    result = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith(" "):
                fields[key] += "\n" + line
            else:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        result.append(fields)
    return result


def keyring(repo: Path, dest: Path) -> Path:
    """The exported ASCII key as the binary keyring apt's signed-by takes."""
    subprocess.run(["gpg", "--batch", "--yes", "--dearmor", "--output", str(dest),
                    str(repo / "GPG-PUB-KEY-XPULAB-SANDBOX.PUB")], check=True, capture_output=True)
    return dest


def built(work: Path, **extra: object) -> Run:
    run = run_tasks(TASKS, work, dict(extra))
    assert run.rc == 0, run.output[-4000:]
    return run


def short_dir() -> Path:
    """A work directory with a short path: gpg-agent's sockets live in the GnuPG home (108-byte limit)."""
    return Path(tempfile.mkdtemp(prefix="xo-"))


@pytest.fixture(scope="module")
def first() -> Iterator[tuple[Path, Run]]:
    work = short_dir()
    yield work, built(work)
    shutil.rmtree(work)


@pytest.fixture
def work() -> Iterator[Path]:
    path = short_dir()
    yield path
    shutil.rmtree(path)


def test_signatures_verify_with_the_exported_key(first: tuple[Path, Run], tmp_path: Path) -> None:
    work, run = first
    assert run.changed > 0
    repo = repo_of(work)
    ring = keyring(repo, tmp_path / "key.gpg")
    dists = repo / "dists" / "all"
    inrelease = subprocess.run(["gpgv", "--keyring", str(ring), "--output", "-", str(dists / "InRelease")],
                               capture_output=True, text=True, check=True).stdout
    assert inrelease == (dists / "Release").read_text()
    subprocess.run(["gpgv", "--keyring", str(ring), str(dists / "Release.gpg"), str(dists / "Release")],
                   capture_output=True, check=True)
    # Tampering is caught: the check above can fail.
    (tmp_path / "Release").write_text((dists / "Release").read_text() + "Extra: field\n")
    tampered = subprocess.run(["gpgv", "--keyring", str(ring), str(dists / "Release.gpg"), str(tmp_path / "Release")],
                              capture_output=True, check=False)
    assert tampered.returncode != 0


def test_fingerprint_file_names_the_exported_key_and_the_secret_stays_out(first: tuple[Path, Run]) -> None:
    work, _ = first
    repo = repo_of(work)
    shown = subprocess.run(["gpg", "--batch", "--with-colons", "--show-keys", str(repo / "GPG-PUB-KEY-XPULAB-SANDBOX.PUB")],
                           capture_output=True, text=True, check=True).stdout
    fingerprints = [line.split(":")[9] for line in shown.splitlines() if line.startswith("fpr:")]
    assert (repo / "KEY_FINGERPRINT").read_text().strip() == fingerprints[0]
    assert len(fingerprints[0]) == 40
    assert (work / "cache" / "oneapi-signing-gnupg" / "private-keys-v1.d").is_dir()
    assert not list(repo.rglob("private-keys-v1.d")) and not list(repo.rglob("*.key"))


def test_release_and_packages_list_every_file_with_its_hash(first: tuple[Path, Run]) -> None:
    work, _ = first
    repo = repo_of(work)
    dists = repo / "dists" / "all"
    release = paragraphs((dists / "Release").read_text())[0]
    assert (release["Suite"], release["Codename"], release["Components"], release["Architectures"]) == ("all", "all", "main", "amd64")
    listed = [line.split() for line in release["SHA256"].strip().splitlines()]
    assert {name for _, _, name in listed} == {"main/binary-amd64/Packages", "main/binary-amd64/Packages.gz"}
    for digest, size, name in listed:
        data = (dists / name).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (digest, int(size))

    packages_file = dists / "main" / "binary-amd64" / "Packages"
    assert gzip.decompress(packages_file.with_suffix(".gz").read_bytes()) == packages_file.read_bytes()
    packages = {p["Package"]: p for p in paragraphs(packages_file.read_text())}
    assert set(packages) == {PREFIX + v for v in VERSIONS}
    for version in VERSIONS:
        fields = packages[PREFIX + version]
        deb = (repo / fields["Filename"]).read_bytes()
        assert (hashlib.sha256(deb).hexdigest(), len(deb)) == (fields["SHA256"], int(fields["Size"]))
        assert fields["Version"] == f"{version}.0-0xpulab1" and fields["Architecture"] == "all"
        assert fields["Conflicts"] == fields["Provides"] == "xpulab-oneapi-standin"
        assert "NOT Intel software" in fields["Description"]


def test_stand_in_installs_a_setvars_that_exports_its_version(first: tuple[Path, Run], tmp_path: Path) -> None:
    work, _ = first
    deb = next((repo_of(work) / "pool" / "main").glob(f"{PREFIX}2026.0_*.deb"))
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    assert "root/root" in listing and "./opt/intel/oneapi/setvars.sh" in listing
    subprocess.run(["dpkg-deb", "--extract", str(deb), str(tmp_path)], check=True)
    setvars = tmp_path / "opt" / "intel" / "oneapi" / "setvars.sh"
    assert setvars.stat().st_mode & 0o777 == 0o755
    env = subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", "bash", "--noprofile", "--norc", "-c",
                          f'. "{setvars}" --force >/dev/null && env'],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert {"ONEAPI_ROOT=/opt/intel/oneapi", "XPULAB_ONEAPI_STANDIN=1", "XPULAB_ONEAPI_STANDIN_VERSION=2026.0"} <= set(env)


def test_apt_reads_the_repository_through_a_signed_by_keyring(first: tuple[Path, Run], tmp_path: Path) -> None:
    """apt-get update in a private apt state: the signature, Release and Packages are accepted."""
    work, _ = first
    repo = repo_of(work)
    ring = keyring(repo, tmp_path / "oneapi.gpg")
    (tmp_path / "sources.list").write_text(f"deb [signed-by={ring}] file://{repo} all main\n")
    for sub in ("state/lists/partial", "cache/archives/partial"):
        (tmp_path / sub).mkdir(parents=True)
    opts = [f"-oDir::Etc::SourceList={tmp_path / 'sources.list'}", f"-oDir::Etc::SourceParts={tmp_path / 'none'}",
            f"-oDir::State={tmp_path / 'state'}", f"-oDir::State::status={tmp_path / 'status'}",
            f"-oDir::Cache={tmp_path / 'cache'}", "-oDebug::NoLocking=1", "-oAPT::Architecture=amd64",
            "-oAPT::Sandbox::User=root"]
    (tmp_path / "status").write_text("")
    update = subprocess.run(["apt-get", *opts, "update"], capture_output=True, text=True, check=False)
    assert update.returncode == 0 and "W:" not in update.stdout + update.stderr, update.stdout + update.stderr
    policy = subprocess.run(["apt-cache", *opts, "policy", f"{PREFIX}2026.1"], capture_output=True, text=True, check=True)
    assert "Candidate: 2026.1.0-0xpulab1" in policy.stdout, policy.stdout

    # The same repository with another key in the keyring is refused.
    other = tmp_path / "other.gnupg"
    other.mkdir(mode=0o700)
    gpg = ["gpg", "--batch", "--homedir", str(other)]
    subprocess.run([*gpg, "--passphrase", "", "--pinentry-mode", "loopback", "--quick-generate-key",
                    "other <other@localhost.invalid>", "ed25519", "sign", "never"], capture_output=True, check=True)
    subprocess.run([*gpg, "--yes", "--output", str(ring), "--export"], capture_output=True, check=True)
    subprocess.run(["gpgconf", "--homedir", str(other), "--kill", "gpg-agent"], check=False)
    refused = subprocess.run(["apt-get", *opts, "update"], capture_output=True, text=True, check=False)
    assert "NO_PUBKEY" in refused.stdout + refused.stderr, refused.stdout + refused.stderr


def test_rebuilt_only_when_an_input_changes(work: Path) -> None:
    first_run = built(work)
    repo = repo_of(work)
    inrelease = repo / "dists" / "all" / "InRelease"
    before = inrelease.stat().st_mtime_ns
    again = built(work)
    assert again.changed == 0, again.output[-3000:]
    assert inrelease.stat().st_mtime_ns == before

    # A new package revision is a new input: rebuilt, swapped in, nothing left beside it.
    bumped = built(work, sandbox_oneapi_package_revision="0xpulab2")
    assert bumped.changed > 0
    versions = {p["Version"] for p in paragraphs((repo / "dists/all/main/binary-amd64/Packages").read_text())}
    assert versions == {f"{v}.0-0xpulab2" for v in VERSIONS}
    assert sorted(p.name for p in (work / "mirror").iterdir()) == ["oneapi"]

    # A new signing key (its GnuPG home lost) rebuilds and re-exports.
    old_fingerprint = (repo / "KEY_FINGERPRINT").read_text()
    shutil.rmtree(work / "cache" / "oneapi-signing-gnupg")
    assert built(work, sandbox_oneapi_package_revision="0xpulab2").changed > 0
    assert (repo / "KEY_FINGERPRINT").read_text() != old_fingerprint
    assert first_run.changed > 0

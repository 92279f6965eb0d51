"""Unit tests for tools/build_oneapi_repo.py: the sandbox's signed oneAPI stand-in repository."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import build_oneapi_repo as repo_tool  # type: ignore[import-not-found]
import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "build_oneapi_repo.py"

pytestmark = pytest.mark.skipif(
    not (shutil.which("gpg") and shutil.which("gpg-agent") and shutil.which("dpkg-deb") and shutil.which("gpgv")),
    reason="needs gnupg (gpg, gpg-agent, gpgv) and dpkg-deb on the controller",
)

SPEC = repo_tool.RepoSpec(versions=("2026.1", "2026.0"))


@pytest.fixture(scope="module")
def gnupghome(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One signing key for the module: key generation is the slow part."""
    return tmp_path_factory.mktemp("gnupg") / "home"


def build(tmp_path: Path, gnupghome: Path, spec: repo_tool.RepoSpec = SPEC, **kw: bool) -> dict[str, object]:
    return repo_tool.ensure_repo(tmp_path / "mirror" / "oneapi", gnupghome, spec, **kw)


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=120, check=False)


def verify_inrelease(repo: Path) -> str:
    """Check InRelease and Release.gpg with gpgv against the exported key, as apt does."""
    keyring = repo.parent / "keyring.gpg"
    subprocess.run(["gpg", "--batch", "--yes", "--dearmor", "--output", str(keyring),
                    str(repo / repo_tool.PUBLIC_KEY_NAME)], check=True, capture_output=True)
    dists = repo / "dists" / "all"
    inrelease = subprocess.run(["gpgv", "--keyring", str(keyring), "--output", "-", str(dists / "InRelease")],
                               capture_output=True, text=True, check=True)
    subprocess.run(["gpgv", "--keyring", str(keyring), str(dists / "Release.gpg"), str(dists / "Release")],
                   capture_output=True, check=True)
    return inrelease.stdout


def parse_paragraphs(text: str) -> list[dict[str, str]]:
    paragraphs = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith(" "):
                fields[key] += "\n" + line
            else:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        paragraphs.append(fields)
    return paragraphs


def test_spec_validates_versions() -> None:
    with pytest.raises(repo_tool.RepoError, match="does not look like"):
        repo_tool.RepoSpec(versions=("2026.1; rm -rf /",))
    with pytest.raises(repo_tool.RepoError, match="no DLE version"):
        repo_tool.RepoSpec(versions=())
    assert SPEC.deb_path("2026.1") == "pool/main/intel-deep-learning-essentials-2026.1_2026.1.0-0xpulab1_all.deb"


def test_find_fingerprint_picks_the_primary_with_that_uid() -> None:
    colons = "\n".join([
        "sec:u:255:22:AAAA:1::::::scSC:::+:::23::0:",
        "fpr:::::::::1111111111111111111111111111111111111111:",
        "uid:u::::1::H::other <o@x>::::::::::0:",
        "ssb:u:255:18:BBBB:1:::::e:::+:::cv25519::",
        "fpr:::::::::2222222222222222222222222222222222222222:",
        "sec:u:255:22:CCCC:1::::::scSC:::+:::23::0:",
        "fpr:::::::::3333333333333333333333333333333333333333:",
        "uid:u::::1::H::wanted <w@x>::::::::::0:",
    ])
    assert repo_tool.find_fingerprint(colons, "wanted <w@x>", primary="sec") == "3" * 40
    assert repo_tool.find_fingerprint(colons, "other <o@x>", primary="sec") == "1" * 40
    assert repo_tool.find_fingerprint(colons, "absent", primary="sec") is None


def test_release_lists_every_index_with_hashes() -> None:
    indexes = {"main/binary-amd64/Packages": b"abc\n", "main/binary-amd64/Packages.gz": gzip.compress(b"abc\n")}
    text = repo_tool.release_text(SPEC, indexes, 0)
    assert "Suite: all\n" in text and "Components: main\n" in text and "Architectures: amd64\n" in text
    assert "Date: Thu, 01 Jan 1970 00:00:00 GMT\n" in text
    abc_sha256 = hashlib.sha256(b"abc\n").hexdigest()
    assert f" {abc_sha256}        4 main/binary-amd64/Packages\n" in text


def test_builds_a_signed_repository_apt_can_verify(tmp_path: Path, gnupghome: Path) -> None:
    report = build(tmp_path, gnupghome)
    assert report["changed"] is True
    repo = tmp_path / "mirror" / "oneapi"
    fingerprint = (repo / "KEY_FINGERPRINT").read_text().strip()
    assert fingerprint == report["fingerprint"] and len(fingerprint) == 40
    # The signing key stays outside the served tree.
    assert not list(repo.rglob("*.key")) and not (repo / "private-keys-v1.d").exists()

    release = verify_inrelease(repo)
    assert release == (repo / "dists" / "all" / "Release").read_text()
    release_fields = parse_paragraphs(release.split("MD5Sum:")[0])[0]
    assert release_fields["Suite"] == "all" and release_fields["Components"] == "main"
    for line in release.split("SHA256:\n")[1].splitlines():
        digest, size, name = line.split()
        data = (repo / "dists" / "all" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest and len(data) == int(size)

    packages_file = repo / "dists" / "all" / "main" / "binary-amd64" / "Packages"
    assert gzip.decompress(packages_file.with_suffix(".gz").read_bytes()) == packages_file.read_bytes()
    packages = {p["Package"]: p for p in parse_paragraphs(packages_file.read_text())}
    assert set(packages) == {"intel-deep-learning-essentials-2026.1", "intel-deep-learning-essentials-2026.0"}
    for name, fields in packages.items():
        deb = (repo / fields["Filename"]).read_bytes()
        assert hashlib.sha256(deb).hexdigest() == fields["SHA256"] and len(deb) == int(fields["Size"])
        assert fields["Architecture"] == "all"
        assert "stand-in" in fields["Description"] and "NOT Intel software" in fields["Description"]
        assert fields["Version"] == f"{name.rsplit('-', 1)[1]}.0-0xpulab1"


def test_stand_in_setvars_exports_the_version(tmp_path: Path, gnupghome: Path) -> None:
    build(tmp_path, gnupghome)
    repo = tmp_path / "mirror" / "oneapi"
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "--extract", str(repo / SPEC.deb_path("2026.0")), str(root)], check=True)
    setvars = root / "opt" / "intel" / "oneapi" / "setvars.sh"
    assert setvars.stat().st_mode & 0o777 == 0o755
    out = subprocess.run(
        ["env", "-i", "PATH=/usr/bin:/bin", "bash", "--noprofile", "--norc", "-c", f'. "{setvars}" --force >/dev/null && env'],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    assert "ONEAPI_ROOT=/opt/intel/oneapi" in out
    assert "XPULAB_ONEAPI_STANDIN=1" in out
    assert "XPULAB_ONEAPI_STANDIN_VERSION=2026.0" in out
    listing = subprocess.run(["dpkg-deb", "--contents", str(repo / SPEC.deb_path("2026.0"))],
                             capture_output=True, text=True, check=True).stdout
    assert "root/root" in listing and "./opt/intel/oneapi/setvars.sh" in listing


def test_rebuilds_only_when_inputs_change(tmp_path: Path, gnupghome: Path) -> None:
    first = build(tmp_path, gnupghome)
    repo = tmp_path / "mirror" / "oneapi"
    deb = repo / SPEC.deb_path("2026.1")
    before = deb.read_bytes()
    again = build(tmp_path, gnupghome)
    assert again["changed"] is False and again["fingerprint"] == first["fingerprint"]
    assert again["key_generated"] is False

    # A missing file means an incomplete repository: rebuilt, same bytes.
    (repo / "dists" / "all" / "InRelease").unlink()
    assert build(tmp_path, gnupghome)["changed"] is True
    assert (repo / "dists" / "all" / "InRelease").is_file()
    assert deb.read_bytes() == before

    # A new version is a new input.
    more = repo_tool.RepoSpec(versions=("2026.1", "2026.0", "2025.3"))
    assert build(tmp_path, gnupghome, more)["changed"] is True
    assert (repo / more.deb_path("2025.3")).is_file()
    assert build(tmp_path, gnupghome, more)["changed"] is False
    assert build(tmp_path, gnupghome, more, force=True)["changed"] is True
    assert not list((tmp_path / "mirror").glob(".oneapi.*")), "staging trees left behind"


def test_new_signing_key_rebuilds_and_reexports(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = build(tmp_path, home)
    shutil.rmtree(home)
    second = build(tmp_path, home)
    assert second["changed"] is True and second["key_generated"] is True
    assert second["fingerprint"] != first["fingerprint"]
    repo = tmp_path / "mirror" / "oneapi"
    assert (repo / "KEY_FINGERPRINT").read_text().strip() == second["fingerprint"]
    verify_inrelease(repo)


def test_cli_reports_json_and_errors(tmp_path: Path, gnupghome: Path) -> None:
    args = ["--repo", str(tmp_path / "r"), "--gnupghome", str(gnupghome)]
    ok = run_tool(*args, "--version=2026.1", "--arch", "amd64", "--arch", "arm64")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["changed"] is True
    assert report["packages"] == {"intel-deep-learning-essentials-2026.1": "2026.1.0-0xpulab1"}
    assert (tmp_path / "r" / "dists" / "all" / "main" / "binary-arm64" / "Packages").is_file()
    assert json.loads(run_tool(*args, "--version=2026.1", "--arch", "amd64", "--arch", "arm64").stdout)["changed"] is False
    bad = run_tool(*args, "--version=latest")
    assert bad.returncode == 1
    assert "does not look like YYYY.N" in json.loads(bad.stdout)["msg"]

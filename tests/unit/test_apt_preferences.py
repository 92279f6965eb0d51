"""apt preferences limit Intel's repositories to what the roles install.

The oneapi and intel_gpu (Ubuntu) preferences templates are rendered with
Ansible's templar and the roles' variables, checked for content, and then
given to the real apt: `apt-get update` and `apt-cache policy` run against a
private apt root (temp dirs) with an "Intel" repository served over HTTP on
127.0.0.1 (the pinned origin) and a "distribution" repository (a file: one).
A package of the pinned origin that the role does not install gets priority
-1 and is never the candidate, even with a higher version than the
distribution's; the packages the role installs (and allowed globs) get 500.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from ansible_templar import ROOT, render, role_files

ONEAPI_TEMPLATE = ROOT / "roles" / "oneapi" / "templates" / "oneapi.pref.j2"
INTEL_GPU_TEMPLATE = ROOT / "roles" / "intel_gpu" / "templates" / "intel-gpu-ubuntu.pref.j2"


def stanzas(text: str) -> list[dict[str, str]]:
    """The records of a preferences file (comments dropped)."""
    records = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line for line in block.splitlines() if not line.startswith("#")]
        records.append(dict(line.split(": ", 1) for line in lines))
    return records


def oneapi_preferences(url: str, version: str = "2026.1") -> str:
    return str(render({"t": ONEAPI_TEMPLATE.read_text()}, files=role_files("oneapi"),
                      data={"oneapi_apt_url": url, "oneapi_version": version})["t"])


def intel_gpu_preferences(url: str) -> str:
    per_os = yaml.safe_load((ROOT / "roles" / "intel_gpu" / "vars" / "Ubuntu-24.yml").read_text())
    return str(render({"t": INTEL_GPU_TEMPLATE.read_text()}, files=role_files("intel_gpu"),
                      data={"intel_gpu_ubuntu_repo_url": url, "intel_gpu_packages": per_os["__intel_gpu_packages"],
                            "intel_gpu_dev_packages": per_os["__intel_gpu_dev_packages"]})["t"])


def test_oneapi_preferences_allow_the_dle_package_and_pin_the_rest_of_the_origin_to_never() -> None:
    records = stanzas(oneapi_preferences("https://apt.repos.intel.com/oneapi"))
    assert [r["Pin"] for r in records] == ['origin "apt.repos.intel.com"'] * 2
    assert records[0]["Package"].split() == ["intel-deep-learning-essentials-2026.1", "intel-oneapi-*", "intel-pti-*"]
    assert records[0]["Pin-Priority"] == "500"
    assert (records[1]["Package"], records[1]["Pin-Priority"]) == ("*", "-1")


def test_oneapi_preferences_follow_a_mirror_and_a_local_repository() -> None:
    assert stanzas(oneapi_preferences("http://127.0.0.1:8765/oneapi"))[1]["Pin"] == 'origin "127.0.0.1"'
    assert stanzas(oneapi_preferences("file:///srv/oneapi"))[1]["Pin"] == 'origin ""'


def test_intel_gpu_preferences_allow_the_stack_and_its_gpu_libraries_only() -> None:
    records = stanzas(intel_gpu_preferences("https://repositories.intel.com/gpu/ubuntu"))
    assert [r["Pin"] for r in records] == ['origin "repositories.intel.com"'] * 2
    allowed = records[0]["Package"].split()
    assert {"intel-opencl-icd", "intel-media-va-driver-non-free", "libze-intel-gpu1", "libze-dev", "libigdgmm*"} <= set(allowed)
    assert not [name for name in allowed if "mesa" in name or name == "*"]
    assert (records[1]["Package"], records[1]["Pin-Priority"]) == ("*", "-1")


# --- the real apt ---------------------------------------------------------

PACKAGE = """Package: {name}
Version: {version}
Architecture: all
Maintainer: nobody <nobody@localhost.invalid>
Filename: ./{name}_{version}_all.deb
Size: 1
SHA256: {zero}
Description: test package
"""


def flat_repo(path: Path, origin: str, packages: dict[str, str]) -> None:
    """A flat apt repository (Packages + an unsigned Release) holding `packages` (name: version)."""
    path.mkdir(parents=True)
    body = "\n".join(PACKAGE.format(name=n, version=v, zero="0" * 64) for n, v in packages.items())
    (path / "Packages").write_text(body)
    digest = hashlib.sha256(body.encode()).hexdigest()
    (path / "Release").write_text(f"Origin: {origin}\nLabel: {origin}\nSuite: {origin}\nCodename: {origin}\n"
                                  f"Date: Mon, 30 Nov 2026 08:00:00 UTC\nSHA256:\n {digest} {len(body)} Packages\n")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A URL on 127.0.0.1 serving tmp_path/www."""
    (tmp_path / "www").mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def apt_policy(root: Path, preferences: str, sources: str, packages: list[str]) -> dict[str, dict[str, object]]:
    """{package: {'candidate': ..., 'priorities': {version: priority}}} from apt-cache policy in a private apt root."""
    (root / "etc/apt/preferences.d").mkdir(parents=True)
    (root / "etc/apt/sources.list.d").mkdir(parents=True)
    for sub in ("var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/log/apt"):
        (root / sub).mkdir(parents=True)
    (root / "status").write_text("")
    (root / "etc/apt/preferences.d/xpulab-test").write_text(preferences)
    (root / "etc/apt/sources.list.d/test.sources").write_text(sources)
    opts = [f"-oDir={root}/", f"-oDir::State::status={root}/status", "-oAPT::Sandbox::User=root",
            "-oAcquire::Languages=none", "-oDir::Etc::main=/dev/null", "-oDir::Etc::parts=/nonexistent"]
    update = subprocess.run(["apt-get", *opts, "update"], capture_output=True, text=True, timeout=120, check=False)
    assert update.returncode == 0 and "E:" not in update.stdout + update.stderr, update.stdout + update.stderr
    out = subprocess.run(["apt-cache", *opts, "policy", *packages], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    result: dict[str, dict[str, object]] = {}
    for block in re.split(r"^(?=\S)", out, flags=re.MULTILINE):
        if not block.strip():
            continue
        name = block.split(":", 1)[0]
        candidate = re.search(r"Candidate: (\S+)", block)
        versions = dict(re.findall(r"^\s+(?:\*\*\* )?(\S+) (-?\d+)$", block, flags=re.MULTILINE))
        result[name] = {"candidate": candidate.group(1) if candidate else None,
                        "priorities": {v: int(p) for v, p in versions.items()}}
    return result


@pytest.mark.skipif(shutil.which("apt-get") is None or shutil.which("apt-cache") is None, reason="needs apt")
def test_apt_never_takes_an_unlisted_package_from_the_pinned_origin(tmp_path: Path, served: str) -> None:
    flat_repo(tmp_path / "www" / "oneapi", "Intel", {
        "intel-deep-learning-essentials-2026.1": "2026.1.0-1",       # what the role installs
        "intel-oneapi-compiler-dpcpp-cpp-2026.1": "2026.1.0-1",      # a dependency (allowed glob)
        "intel-deep-learning-essentials-2025.1": "2025.1.0-1",       # another DLE version
        "zstd": "99.0-1",                                            # shadows a distribution package
    })
    flat_repo(tmp_path / "distro", "Debian", {"zstd": "1.5.4-1"})
    sources = (f"Types: deb\nURIs: {served}/oneapi\nSuites: ./\nTrusted: yes\n\n"
               f"Types: deb\nURIs: file:{tmp_path / 'distro'}\nSuites: ./\nTrusted: yes\n")
    policy = apt_policy(tmp_path / "root", oneapi_preferences(f"{served}/oneapi"), sources, [
        "intel-deep-learning-essentials-2026.1", "intel-oneapi-compiler-dpcpp-cpp-2026.1",
        "intel-deep-learning-essentials-2025.1", "zstd"])
    assert policy["intel-deep-learning-essentials-2026.1"] == {"candidate": "2026.1.0-1", "priorities": {"2026.1.0-1": 500}}
    assert policy["intel-oneapi-compiler-dpcpp-cpp-2026.1"]["priorities"] == {"2026.1.0-1": 500}
    assert policy["intel-deep-learning-essentials-2025.1"] == {"candidate": "(none)", "priorities": {"2025.1.0-1": -1}}
    assert policy["zstd"] == {"candidate": "1.5.4-1", "priorities": {"99.0-1": -1, "1.5.4-1": 500}}


@pytest.mark.skipif(shutil.which("apt-get") is None or shutil.which("apt-cache") is None, reason="needs apt")
def test_apt_takes_the_gpu_stack_but_not_intels_mesa_from_the_pinned_origin(tmp_path: Path, served: str) -> None:
    flat_repo(tmp_path / "www" / "gpu", "Intel", {
        "intel-opencl-icd": "25.18.1-1",       # a package the role installs
        "libigdgmm12": "22.7.2-1",             # a dependency (allowed glob libigdgmm*)
        "libgl1-mesa-dri": "99.0-1",           # Intel's Mesa build: not asked for
    })
    flat_repo(tmp_path / "distro", "Ubuntu", {"libgl1-mesa-dri": "24.0.5-1", "libigdgmm12": "22.3.17-1"})
    sources = (f"Types: deb\nURIs: {served}/gpu\nSuites: ./\nTrusted: yes\n\n"
               f"Types: deb\nURIs: file:{tmp_path / 'distro'}\nSuites: ./\nTrusted: yes\n")
    policy = apt_policy(tmp_path / "root", intel_gpu_preferences(f"{served}/gpu"), sources,
                        ["intel-opencl-icd", "libigdgmm12", "libgl1-mesa-dri"])
    assert policy["intel-opencl-icd"] == {"candidate": "25.18.1-1", "priorities": {"25.18.1-1": 500}}
    assert policy["libigdgmm12"]["candidate"] == "22.7.2-1"
    assert policy["libgl1-mesa-dri"] == {"candidate": "24.0.5-1", "priorities": {"99.0-1": -1, "24.0.5-1": 500}}

"""The Intel GPU stack as installed by the intel_gpu role, on any inventory.

Package, repository, group and fact checks run everywhere. The GPU checks
(vainfo on each render node, clinfo) run where the role's fact lists GPUs
with media engines, and are reported as skipped, with the reason, elsewhere.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import read_fact

FACT = "xpulab_intel_gpu"

# What each distribution release must have, independent of the role's own
# record. Debian: the package pages of bookworm and trixie
# (https://packages.debian.org/<suite>/<package>); Ubuntu: Intel's client GPU
# install instructions (https://dgpu-docs.intel.com/driver/client/overview.html).
EXPECTED_PACKAGES: dict[tuple[str, str], list[str]] = {
    ("debian", "12"): [
        "intel-media-va-driver-non-free", "libmfx-gen1.2", "libvpl2", "vainfo",
        "libze1", "intel-opencl-icd", "clinfo", "intel-gpu-tools", "firmware-misc-nonfree",
    ],
    ("debian", "13"): [
        "intel-media-va-driver-non-free", "libmfx-gen1.2", "libvpl2", "vainfo",
        "libze1", "clinfo", "intel-gpu-tools", "firmware-intel-graphics",
    ],
    ("ubuntu", "22"): [
        "intel-media-va-driver-non-free", "libmfxgen1", "libvpl2", "vainfo",
        "intel-opencl-icd", "intel-level-zero-gpu", "level-zero", "clinfo",
    ],
    ("ubuntu", "24"): [
        "intel-media-va-driver-non-free", "libmfx-gen1", "libvpl2", "vainfo",
        "libze-intel-gpu1", "libze1", "intel-opencl-icd", "clinfo",
    ],
}
INTEL_KEY_FINGERPRINT = "1C1B89D02C929514698AA8059B10C065DBB72B06"


@pytest.fixture(scope="module")
def gpu_fact(host: Any) -> dict[str, Any]:
    return read_fact(host, FACT)


@pytest.fixture(scope="module")
def release(host: Any) -> tuple[str, str]:
    info = host.system_info
    return str(info.distribution).lower(), str(info.release).split(".")[0]


@pytest.fixture(scope="module")
def media_gpus(gpu_fact: dict[str, Any]) -> list[dict[str, Any]]:
    media = [gpu for gpu in gpu_fact["gpus"] if gpu.get("vendor") == "intel" and gpu.get("has_media") is True]
    if not media:
        pytest.skip("no GPU: the xpulab_intel_gpu fact lists no Intel GPU with media engines on this node")
    return media


def test_fact_records_the_stack(gpu_fact: dict[str, Any]) -> None:
    for key in ("gpus", "packages", "users", "groups", "reboot_needed", "problems", "kernel_release"):
        assert key in gpu_fact, f"{key} missing from the {FACT} fact: {sorted(gpu_fact)}"
    assert isinstance(gpu_fact["reboot_needed"], bool)
    assert gpu_fact["packages"], "the fact records no installed package"
    if gpu_fact.get("required"):
        assert gpu_fact["problems"] == [], f"a required decode node has problems: {gpu_fact['problems']}"


def test_distribution_packages_installed(host: Any, release: tuple[str, str], gpu_fact: dict[str, Any]) -> None:
    expected = EXPECTED_PACKAGES.get(release)
    if expected is None:
        pytest.fail(f"{release[0]} {release[1]} is not a release the intel_gpu role supports")
    missing = [name for name in expected if not host.package(name).is_installed]
    assert not missing, f"not installed: {missing}"
    for name in expected:
        recorded = gpu_fact["packages"].get(name)
        assert recorded == host.package(name).version, f"{name}: fact says {recorded}, dpkg says {host.package(name).version}"


def test_non_free_media_driver_is_the_va_driver(host: Any) -> None:
    files = host.check_output("dpkg -L intel-media-va-driver-non-free")
    assert "/iHD_drv_video.so" in files, files
    assert not host.package("intel-media-va-driver").is_installed, "the free (codec-limited) iHD build is installed"


def test_debian_non_free_enabled(host: Any, release: tuple[str, str]) -> None:
    distro, _ = release
    if distro != "debian":
        pytest.skip(f"non-free is a Debian component; this node runs {distro}")
    codename = host.check_output(". /etc/os-release && echo $VERSION_CODENAME")
    targets = host.check_output(
        "apt-get indextargets --no-release-info --format '$(IDENTIFIER) $(RELEASE) $(COMPONENT)'"
    ).splitlines()
    for component in ("non-free", "non-free-firmware"):
        assert f"Packages {codename} {component}" in targets, f"{component} not enabled for {codename}"
    policy = host.check_output("apt-cache policy intel-media-va-driver-non-free")
    assert f"{codename}/non-free" in policy, policy


def test_ubuntu_intel_repository(host: Any, release: tuple[str, str]) -> None:
    distro, _ = release
    if distro != "ubuntu":
        pytest.skip(f"Intel's apt repository is used on Ubuntu only; this node runs {distro}")
    sources = host.file("/etc/apt/sources.list.d/intel-gpu.sources")
    assert sources.exists
    assert "Signed-By: /usr/share/keyrings/intel-graphics.gpg" in sources.content_string
    colons = host.check_output("gpg --batch --show-keys --with-colons /usr/share/keyrings/intel-graphics.gpg")
    fingerprints = [line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:")]
    assert fingerprints and fingerprints[0] == INTEL_KEY_FINGERPRINT, colons


def test_users_in_gpu_groups(host: Any, gpu_fact: dict[str, Any]) -> None:
    users = gpu_fact["users"]
    if not users:
        pytest.skip("intel_gpu_users is empty on this node: no user to check")
    for name in users:
        groups = host.user(name).groups
        for group in gpu_fact["groups"]:
            assert group in groups, f"{name} is not in {group} (groups: {groups})"


def test_vainfo_decodes_on_each_render_node(host: Any, media_gpus: list[dict[str, Any]]) -> None:
    for gpu in media_gpus:
        result = host.run(f"vainfo --display drm --device {gpu['render_node']}")
        assert result.rc == 0, f"{gpu['pci_address']} {gpu['render_node']}: {result.stderr}"
        assert "VAEntrypointVLD" in result.stdout, f"{gpu['render_node']} offers no decode entrypoint:\n{result.stdout}"


def test_render_nodes_belong_to_render(host: Any, media_gpus: list[dict[str, Any]]) -> None:
    for gpu in media_gpus:
        node = host.file(gpu["render_node"])
        assert node.exists, gpu["render_node"]
        assert node.group == "render", f"{gpu['render_node']} group is {node.group}"


def test_clinfo_lists_the_gpus(host: Any, gpu_fact: dict[str, Any], media_gpus: list[dict[str, Any]]) -> None:
    if not gpu_fact.get("opencl_icd"):
        pytest.skip(f"{gpu_fact.get('distribution')} ships no Intel OpenCL ICD: clinfo cannot list the GPUs")
    out = host.check_output("clinfo -l")
    devices = [line for line in out.splitlines() if "Device #" in line and "Intel" in line]
    assert len(devices) >= len(media_gpus), out

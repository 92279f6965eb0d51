"""The intel_gpu role's deb822 templates, rendered the way Ansible renders them.

Ubuntu nodes do not run in the sandbox, so the Ubuntu sources file is checked
here: the role's defaults are resolved with Jinja2 against the facts of each
Ubuntu release, then the template is rendered with the settings of Ansible's
template module (trim_blocks, trailing newline kept, undefined is an error).
Also: the defaults and meta/argument_specs.yml agree, the per-OS package
lists, and the pinned key fingerprint matches Intel's published key.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "intel_gpu"

import xpulab as filters  # type: ignore[import-not-found]  # noqa: E402  (plugins/filter, conftest.py)
from ansible_collections.xpulab.gpu.plugins.module_utils.openpgp import normalize_fingerprint  # noqa: E402

INTEL_FINGERPRINT = "1C1B89D02C929514698AA8059B10C065DBB72B06"
KEY_FILE = ROOT / "molecule" / "intel_gpu" / "files" / "intel-graphics.key"

RELEASES: dict[str, dict[str, str]] = {
    "ubuntu22": {"distribution": "Ubuntu", "distribution_major_version": "22", "distribution_release": "jammy", "kernel": "6.8.0-45-generic"},
    "ubuntu24": {"distribution": "Ubuntu", "distribution_major_version": "24", "distribution_release": "noble", "kernel": "6.8.0-45-generic"},
    "debian12": {"distribution": "Debian", "distribution_major_version": "12", "distribution_release": "bookworm", "kernel": "6.1.0-26-amd64"},
    "debian13": {"distribution": "Debian", "distribution_major_version": "13", "distribution_release": "trixie", "kernel": "6.12.48+deb13-amd64"},
}
DEB822_KEYS = {"Types", "URIs", "Suites", "Components", "Architectures", "Signed-By"}


def environment() -> jinja2.Environment:
    """Jinja2 set up like Ansible's template module (plus the role's filters)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(ROLE / "templates")),
        trim_blocks=True,
        lstrip_blocks=False,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(filters.FilterModule().filters())
    return env


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def resolve(value: Any, context: dict[str, Any], env: jinja2.Environment) -> Any:
    """Template a default value the way Ansible would (strings, lists, dicts)."""
    if isinstance(value, str) and "{{" in value:
        return env.from_string(value).render(context)
    if isinstance(value, list):
        return [resolve(item, context, env) for item in value]
    if isinstance(value, dict):
        return {key: resolve(item, context, env) for key, item in value.items()}
    return value


def role_vars(release: str, **overrides: Any) -> dict[str, Any]:
    """The role's defaults resolved for a release's facts, with overrides."""
    env = environment()
    context: dict[str, Any] = {"ansible_facts": RELEASES[release]}
    defaults = load_yaml(ROLE / "defaults" / "main.yml")
    context.update({name: resolve(value, context, env) for name, value in defaults.items()})
    context.update(overrides)
    return context


def render(template: str, variables: dict[str, Any]) -> str:
    return environment().get_template(template).render(variables)


def paragraphs(text: str) -> list[dict[str, str]]:
    """deb822 paragraphs of a sources file (comments dropped, as apt does)."""
    result: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                result.append(current)
            current = {}
            continue
        assert not line[0].isspace(), f"continuation lines are not used: {line!r}"
        key, sep, value = line.partition(": ")
        assert sep, f"not a 'Key: value' line: {line!r}"
        assert key in DEB822_KEYS, f"unknown deb822 field {key!r}"
        assert key not in current, f"{key} twice in one paragraph"
        current[key] = value
    if current:
        result.append(current)
    return result


# --- Ubuntu: Intel's repository -------------------------------------------


@pytest.mark.parametrize(("release", "codename"), [("ubuntu22", "jammy"), ("ubuntu24", "noble")])
def test_ubuntu_sources_per_release(release: str, codename: str) -> None:
    text = render("intel-gpu-ubuntu.sources.j2", role_vars(release))
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert paragraphs(text) == [{
        "Types": "deb",
        "URIs": "https://repositories.intel.com/gpu/ubuntu",
        "Suites": codename,
        "Components": "unified",
        "Architectures": "amd64",
        "Signed-By": "/usr/share/keyrings/intel-graphics.gpg",
    }]


def test_ubuntu_sources_follow_the_mirror_settings() -> None:
    text = render("intel-gpu-ubuntu.sources.j2", role_vars(
        "ubuntu24",
        intel_gpu_ubuntu_repo_url="http://mirror.lab.internal/intel-gpu/ubuntu",
        intel_gpu_ubuntu_suite="noble",
        intel_gpu_ubuntu_components=["client"],
        intel_gpu_ubuntu_architectures=["amd64", "i386"],
        intel_gpu_ubuntu_keyring="/etc/apt/keyrings/intel.gpg",
    ))
    (stanza,) = paragraphs(text)
    assert stanza["URIs"] == "http://mirror.lab.internal/intel-gpu/ubuntu"
    assert stanza["Components"] == "client"
    assert stanza["Architectures"] == "amd64 i386"
    assert stanza["Signed-By"] == "/etc/apt/keyrings/intel.gpg"


def test_ubuntu_defaults_point_at_intel() -> None:
    variables = role_vars("ubuntu24")
    assert variables["intel_gpu_ubuntu_key_url"] == "https://repositories.intel.com/gpu/intel-graphics.key"
    assert variables["intel_gpu_ubuntu_keyring"] == "/usr/share/keyrings/intel-graphics.gpg"


# --- Debian: non-free -------------------------------------------------------


def debian_stanzas(release: str, targets: list[str], **overrides: Any) -> dict[str, Any]:
    """Role variables for Debian with intel_gpu_debian_stanzas computed as repo_debian.yml does."""
    variables = role_vars(release, **overrides)
    codename = RELEASES[release]["distribution_release"]
    wanted = [
        {"uri": variables["intel_gpu_debian_mirror_url"], "suite": codename},
        {"uri": variables["intel_gpu_debian_mirror_url"], "suite": f"{codename}-updates"},
    ]
    if variables["intel_gpu_debian_security_mirror_url"]:
        wanted.append({"uri": variables["intel_gpu_debian_security_mirror_url"], "suite": f"{codename}-security"})
    variables["intel_gpu_debian_stanzas"] = filters.apt_missing_sources(
        targets, wanted, variables["intel_gpu_debian_components"], variables["intel_gpu_debian_sources_file"]
    )
    return variables


@pytest.mark.parametrize(("release", "codename"), [("debian12", "bookworm"), ("debian13", "trixie")])
def test_debian_non_free_on_a_minimal_image(release: str, codename: str) -> None:
    # What debootstrap writes: only main, in /etc/apt/sources.list.
    variables = debian_stanzas(release, [f"Packages {codename} main /etc/apt/sources.list:1"])
    text = render("debian-non-free.sources.j2", variables)
    assert paragraphs(text) == [
        {
            "Types": "deb",
            "URIs": "http://deb.debian.org/debian",
            "Suites": f"{codename} {codename}-updates",
            "Components": "non-free non-free-firmware",
            "Signed-By": "/usr/share/keyrings/debian-archive-keyring.gpg",
        },
        {
            "Types": "deb",
            "URIs": "http://deb.debian.org/debian-security",
            "Suites": f"{codename}-security",
            "Components": "non-free non-free-firmware",
            "Signed-By": "/usr/share/keyrings/debian-archive-keyring.gpg",
        },
    ]
    assert text.startswith("# Managed by xpulab")


def test_debian_non_free_only_where_missing_and_from_a_mirror() -> None:
    targets = [
        "Packages bookworm non-free-firmware /etc/apt/sources.list:1",
        "Packages bookworm-updates non-free-firmware /etc/apt/sources.list:2",
    ]
    variables = debian_stanzas(
        "debian12", targets,
        intel_gpu_debian_mirror_url="http://mirror.lab.internal/debian",
        intel_gpu_debian_security_mirror_url="",
    )
    assert paragraphs(render("debian-non-free.sources.j2", variables)) == [{
        "Types": "deb",
        "URIs": "http://mirror.lab.internal/debian",
        "Suites": "bookworm bookworm-updates",
        "Components": "non-free",
        "Signed-By": "/usr/share/keyrings/debian-archive-keyring.gpg",
    }]


# --- defaults, argument specs, per-OS lists, pinned key --------------------


def test_defaults_and_argument_specs_agree() -> None:
    defaults = load_yaml(ROLE / "defaults" / "main.yml")
    options = load_yaml(ROLE / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    per_os = {"intel_gpu_packages", "intel_gpu_dev_packages", "intel_gpu_verify_opencl"}
    assert set(options) == set(defaults) | per_os
    for name, spec in options.items():
        assert name.startswith("intel_gpu_")
        if "default" in spec:
            assert spec["default"] == defaults[name], name
        elif name in defaults:
            assert isinstance(defaults[name], str) and "{{" in defaults[name], f"{name}: spec lacks its default"


def test_per_os_vars() -> None:
    found = sorted(path.name for path in (ROLE / "vars").glob("*.yml"))
    assert found == ["Debian-12.yml", "Debian-13.yml", "Ubuntu-22.yml", "Ubuntu-24.yml", "main.yml"]
    lists = {name: load_yaml(ROLE / "vars" / name) for name in found if name != "main.yml"}
    for name, data in lists.items():
        packages = data["__intel_gpu_packages"]
        assert "intel-media-va-driver-non-free" in packages and "vainfo" in packages and "clinfo" in packages, name
        assert set(data["__intel_gpu_firmware_packages"]) <= set(packages), name
        assert data["__intel_gpu_opencl_icd"] == ("intel-opencl-icd" in packages), name
    assert "intel-opencl-icd" in lists["Debian-12.yml"]["__intel_gpu_packages"]
    assert "intel-opencl-icd" not in lists["Debian-13.yml"]["__intel_gpu_packages"]
    for name in ("Debian-12.yml", "Debian-13.yml"):
        assert {"libze1", "intel-gpu-tools", "libvpl2"} <= set(lists[name]["__intel_gpu_packages"])
        assert lists[name]["__intel_gpu_dev_packages"] == ["libze-dev"]


def openpgp_v4_fingerprint(armored: str) -> str:
    """Fingerprint of the first (primary) key in an ASCII-armored key block (RFC 4880 12.2)."""
    lines = armored.strip().splitlines()
    body_start = lines.index("") + 1
    body = [line for line in lines[body_start:-1] if not line.startswith("=")]
    data = base64.b64decode("".join(body))
    tag = data[0]
    assert tag & 0x80, "not an OpenPGP packet"
    if tag & 0x40:  # new format
        assert tag & 0x3F == 6 and data[1] < 192
        length, start = data[1], 2
    else:  # old format
        assert (tag >> 2) & 0x0F == 6, "first packet is not a public key"
        length_type = tag & 0x03
        size = {0: 1, 1: 2, 2: 4}[length_type]
        length, start = int.from_bytes(data[1:1 + size], "big"), 1 + size
    packet = data[start:start + length]
    assert packet[0] == 4, "not a version 4 key"
    return hashlib.sha1(b"\x99" + len(packet).to_bytes(2, "big") + packet).hexdigest().upper()  # noqa: S324


def test_pinned_fingerprint_is_intels_published_key() -> None:
    defaults = load_yaml(ROLE / "defaults" / "main.yml")
    assert normalize_fingerprint(defaults["intel_gpu_ubuntu_key_fingerprint"]) == INTEL_FINGERPRINT
    assert openpgp_v4_fingerprint(KEY_FILE.read_text()) == INTEL_FINGERPRINT

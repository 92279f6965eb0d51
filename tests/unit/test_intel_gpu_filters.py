"""Unit tests for roles/intel_gpu/filter_plugins/intel_gpu.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "roles" / "intel_gpu" / "filter_plugins"))

import intel_gpu as f  # type: ignore[import-not-found]  # noqa: E402

INTEL = "1C1B89D02C929514698AA8059B10C065DBB72B06"
DEBIAN_12 = "4D64FEC119C2029067D6E791F8D2585B8783D481"

# `gpg --show-keys --with-colons` of Intel's intel-graphics.key (gpg 2.2.40).
INTEL_COLONS = """\
pub:-:2048:1:9B10C065DBB72B06:1598545209:::-:::scESC::::::23::0:
fpr:::::::::1C1B89D02C929514698AA8059B10C065DBB72B06:
uid:-::::1598545209::EFFC2039CF982E670EFDA4473A2C1169C88A989F::Intel Corporation (repositories.intel.com key) <graphics-support@intel.com>::::::::::0:
sub:-:2048:1:DCA3C02757BFDC7F:1598545209::::::e::::::23:
fpr:::::::::853C36C5C3A5EA57D57EFB14DCA3C02757BFDC7F:
"""
# The same key followed by Debian 12's release key, in one file.
TWO_KEYS_COLONS = INTEL_COLONS + """\
pub:-:255:22:F8D2585B8783D481:1674492243:1926780243::-:::scSC:::::ed25519:::0:
fpr:::::::::4D64FEC119C2029067D6E791F8D2585B8783D481:
uid:-::::1674492243::F511AE250D42128C160F8195C731AFD9683AA6CB::Debian Stable Release Key (12/bookworm) <debian-release@lists.debian.org>::::::::::0:
"""


def test_primary_fingerprint_of_intels_key() -> None:
    assert f.primary_fingerprints(INTEL_COLONS) == [INTEL]


def test_subkey_fingerprints_are_not_primary_keys() -> None:
    assert "853C36C5C3A5EA57D57EFB14DCA3C02757BFDC7F" not in f.primary_fingerprints(INTEL_COLONS)


def test_every_primary_key_of_a_file_is_listed() -> None:
    assert f.primary_fingerprints(TWO_KEYS_COLONS.splitlines()) == [INTEL, DEBIAN_12]


def test_no_key() -> None:
    assert f.primary_fingerprints("") == []
    assert f.primary_fingerprints(["tru::1:1700000000:0:3:1:5"]) == []


def test_secret_key_listing_counts_as_primary() -> None:
    assert f.primary_fingerprints(["sec:u:255:22:AA:1::::::", "fpr:::::::::ABCDEF:"]) == ["ABCDEF"]


@pytest.mark.parametrize(
    "given",
    [INTEL, INTEL.lower(), "1C1B 89D0 2C92 9514 698A  A805 9B10 C065 DBB7 2B06", "0x" + INTEL],
)
def test_normalize_fingerprint(given: str) -> None:
    assert f.normalize_fingerprint(given) == INTEL


def test_normalize_keeps_garbage_recognisable() -> None:
    assert f.normalize_fingerprint(None) == ""
    assert f.normalize_fingerprint("SET-ME") == "SET-ME"


OWN = "/etc/apt/sources.list.d/xpulab-debian-non-free.sources"
WANTED = [
    {"uri": "http://deb.debian.org/debian", "suite": "bookworm"},
    {"uri": "http://deb.debian.org/debian", "suite": "bookworm-updates"},
    {"uri": "http://deb.debian.org/debian-security", "suite": "bookworm-security"},
]
COMPONENTS = ["non-free", "non-free-firmware"]


def test_minimal_image_gets_everything() -> None:
    targets = [
        "Packages bookworm main /etc/apt/sources.list:1",
        "Translations bookworm main /etc/apt/sources.list:1",
    ]
    assert f.apt_missing_sources(targets, WANTED, COMPONENTS, OWN) == [
        {"uris": "http://deb.debian.org/debian", "suites": ["bookworm", "bookworm-updates"], "components": COMPONENTS},
        {"uris": "http://deb.debian.org/debian-security", "suites": ["bookworm-security"], "components": COMPONENTS},
    ]


def test_netinst_sources_only_miss_non_free() -> None:
    # The Debian 12 installer enables non-free-firmware everywhere, not non-free.
    targets = [
        f"Packages {suite} {component} /etc/apt/sources.list:{line}"
        for line, suite in enumerate(["bookworm", "bookworm-updates", "bookworm-security"], start=1)
        for component in ("main", "non-free-firmware")
    ]
    assert f.apt_missing_sources(targets, WANTED, COMPONENTS, OWN) == [
        {"uris": "http://deb.debian.org/debian", "suites": ["bookworm", "bookworm-updates"], "components": ["non-free"]},
        {"uris": "http://deb.debian.org/debian-security", "suites": ["bookworm-security"], "components": ["non-free"]},
    ]


def test_everything_enabled_elsewhere_needs_no_file() -> None:
    targets = [
        f"Packages {suite} {component} /etc/apt/sources.list.d/debian.sources:1"
        for suite in ("bookworm", "bookworm-updates", "bookworm-security")
        for component in ("main", "contrib", "non-free", "non-free-firmware")
    ]
    assert f.apt_missing_sources(targets, WANTED, COMPONENTS, OWN) == []


def test_the_roles_own_file_does_not_count() -> None:
    targets = [
        f"Packages {suite} {component} {OWN}:1"
        for suite in ("bookworm", "bookworm-updates")
        for component in COMPONENTS
    ]
    stanzas = f.apt_missing_sources("\n".join(targets), WANTED[:2], COMPONENTS, OWN)
    assert stanzas == [
        {"uris": "http://deb.debian.org/debian", "suites": ["bookworm", "bookworm-updates"], "components": COMPONENTS}
    ]


def test_other_mirrors_and_source_entries() -> None:
    # A local mirror enabling non-free counts; deb-src (Sources) targets do not.
    targets = [
        "Packages bookworm non-free /etc/apt/sources.list.d/lab-mirror.list:3",
        "Sources bookworm non-free-firmware /etc/apt/sources.list:2",
        "garbage",
    ]
    stanzas = f.apt_missing_sources(targets, WANTED[:1], COMPONENTS, OWN)
    assert stanzas == [
        {"uris": "http://deb.debian.org/debian", "suites": ["bookworm"], "components": ["non-free-firmware"]}
    ]


def test_filter_plugin_entry_point() -> None:
    filters = f.FilterModule().filters()
    assert set(filters) == {
        "intel_gpu_primary_fingerprints",
        "intel_gpu_normalize_fingerprint",
        "intel_gpu_apt_missing_sources",
    }

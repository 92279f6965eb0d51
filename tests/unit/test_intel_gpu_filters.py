"""Unit tests for the intel_gpu filter in plugins/filter/xpulab.py."""

from __future__ import annotations

import xpulab as f  # type: ignore[import-not-found]

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
    assert filters["intel_gpu_apt_missing_sources"] is f.apt_missing_sources

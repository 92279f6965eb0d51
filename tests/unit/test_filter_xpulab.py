"""Unit tests for plugins/filter/xpulab.py."""

from __future__ import annotations

import pytest
import xpulab  # type: ignore[import-not-found]


def hv(**hosts: tuple[object, str | None]) -> dict[str, dict[str, object]]:
    return {h: {"need": need, "fp": fp} for h, (need, fp) in hosts.items()}


def test_one_builder_per_fingerprint_in_play_order() -> None:
    hostvars = hv(a=(True, "f1"), b=(True, "f1"), c=(True, "f2"), d=(False, "f3"))
    assert xpulab.pick_builders(["a", "b", "c", "d"], hostvars, "need", "fp") == {"f1": "a", "f2": "c"}


def test_order_decides_the_builder() -> None:
    hostvars = hv(a=(True, "f1"), b=(True, "f1"))
    assert xpulab.pick_builders(["b", "a"], hostvars, "need", "fp") == {"f1": "b"}


def test_string_booleans_from_templates() -> None:
    hostvars = hv(a=("False", "f1"), b=(" True ", "f1"), c=("yes", "f2"))
    assert xpulab.pick_builders(["a", "b", "c"], hostvars, "need", "fp") == {"f1": "b", "f2": "c"}


def test_hosts_without_the_variable_do_not_build() -> None:
    assert xpulab.pick_builders(["a"], {"a": {}}, "need", "fp") == {}
    assert xpulab.pick_builders(["ghost"], {}, "need", "fp") == {}


def test_a_builder_needs_a_fingerprint() -> None:
    with pytest.raises(ValueError, match="host a needs a build but has no fp"):
        xpulab.pick_builders(["a"], hv(a=(True, None)), "need", "fp")


def test_registered_as_ansible_filter() -> None:
    assert xpulab.FilterModule().filters()["xpulab_pick_builders"] is xpulab.pick_builders


SEED = "b01942c677c7660b54a925cccbe927a78c783287"
ROWS = [
    {"method": "plugin", "torchcodec": "0.17.0", "torch": ["2.14"], "ffmpeg": ["6", "7", "8", "9"], "source": "PyPI"},
    {"method": "source", "torchcodec": SEED, "ref": "refs/pull/558/head", "torch": ["2.8"], "ffmpeg": ["6.1.2"],
     "oneapi": "2025.1", "source": "seed"},
]


def test_compat_prefix_matching() -> None:
    assert xpulab.compat_matches(ROWS, "plugin", "0.17.0", "2.14.1", "7.1.5") == [ROWS[0]]
    assert xpulab.compat_matches(ROWS, "source", SEED, "2.8.0", "6.1.2") == [ROWS[1]]


def test_compat_rejects_near_misses() -> None:
    assert xpulab.compat_matches(ROWS, "plugin", "0.17.0", "2.13.0", "7.1.5") == []
    assert xpulab.compat_matches(ROWS, "plugin", "0.17.0", "2.140", "7.1.5") == []
    assert xpulab.compat_matches(ROWS, "plugin", "0.17.0", "2.14.1", "10.0") == []
    assert xpulab.compat_matches(ROWS, "source", SEED, "2.8.0", "6.1.1") == []
    # Source rows are keyed by commit: the ref is a label, and another commit (or a short one) is not covered.
    assert xpulab.compat_matches(ROWS, "source", "refs/pull/558/head", "2.8.0", "6.1.2") == []
    assert xpulab.compat_matches(ROWS, "source", SEED[:7], "2.8.0", "6.1.2") == []
    assert xpulab.compat_matches(ROWS, "source", "f06c28684edd0570cb44e9d7cbe440b60e37ff0e", "2.8.0", "6.1.2") == []
    assert xpulab.compat_matches(ROWS, "plugin", "0.16.0", "2.14.1", "7.1.5") == []


def test_compat_scalar_entries() -> None:
    rows = [{"method": "plugin", "torchcodec": "0.17.0", "torch": "2.14", "ffmpeg": 7}]
    assert xpulab.compat_matches(rows, "plugin", "0.17.0", "2.14.1", "7.1.1") == rows


def test_compat_describe_lists_rows_of_a_method() -> None:
    text = xpulab.compat_describe(ROWS, "source")
    assert text == f"- source {SEED} (refs/pull/558/head): torch 2.8, FFmpeg 6.1.2, oneAPI 2025.1 (seed)"
    assert len(xpulab.compat_describe(ROWS).splitlines()) == 2
    assert xpulab.compat_describe(ROWS, "plugin").startswith("- plugin 0.17.0: torch 2.14, FFmpeg 6/7/8/9 (PyPI)")

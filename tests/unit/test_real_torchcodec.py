"""`make real-torchcodec` (sandbox/playbooks/real_torchcodec.yml): its settings
stay in step with the torchcodec role, and the role's known failures of the
real TorchCodec are well formed.

The real run needs a clone of the real repository, which CI cannot reach; what
can be checked without it is checked here: the pinned commit and torch have a
compatibility row, the mirror's locks carry what the roles install, the suite
finds the provisioned FFmpeg's ``ffmpeg`` first on its PATH, and every known
failure of the real commit and release parses with the suite runner and names
a measured run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from ansible_templar import ROOT, render, role_files

ROLE = ROOT / "roles" / "torchcodec"
REAL_VARS = ROOT / "sandbox" / "playbooks" / "vars" / "real_torchcodec.yml"
sys.path.insert(0, str(ROLE / "files"))
import xpulab_torchcodec_tests as runner  # type: ignore[import-not-found]  # noqa: E402


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def matches(versions: list[str], version: str) -> bool:
    """The compatibility table's dotted-prefix match ("2.13" covers 2.13.0)."""
    return any(version == v or version.startswith(v + ".") for v in versions)


def test_the_real_run_pins_the_roles_commit_and_a_compatible_torch() -> None:
    real = load(REAL_VARS)
    defaults = load(ROLE / "defaults" / "main.yml")
    assert real["torchcodec_git_commit"] == defaults["torchcodec_git_commit"]
    assert real["torchcodec_git_ref"] == defaults["torchcodec_git_ref"] == "refs/pull/558/head"
    assert real["torchcodec_git_ref"] in real["sandbox_real_refs"]
    assert f"refs/tags/v{real['torchcodec_version']}" in real["sandbox_real_refs"]
    table = load(ROLE / "vars" / "main.yml")["torchcodec_compat"]
    # The plugin row of the opt-in run is its own (never verified): not in the role's table.
    assert not [r for r in table if r["method"] == "plugin" and r["torchcodec"] == real["torchcodec_version"]]
    for method, key, rows_from in (("source", real["torchcodec_git_commit"], table),
                                   ("plugin", real["torchcodec_version"], real["torchcodec_compat_extra"])):
        rows = [r for r in rows_from if r["method"] == method and r["torchcodec"] == key]
        assert rows and any(matches(r["torch"], real["pytorch_version"]) and matches(r["ffmpeg"], "7.1.5")
                            for r in rows), (method, key)


def test_the_mirror_locks_carry_what_the_roles_install() -> None:
    real = load(REAL_VARS)
    locks = {lock["name"]: lock for lock in real["sandbox_locks"]}
    torch = f"torch=={real['pytorch_version']}"
    assert torch in locks[f"pytorch-{real['pytorch_version']}"]["requirements"]
    assert f"torchcodec=={real['torchcodec_version']}" in locks[f"torchcodec-{real['torchcodec_version']}"]["requirements"]
    assert locks["torchcodec-tests"]["requirements"] == real["torchcodec_test_packages"]
    # The real suite imports PIL and torcheval (the fixture's needs only pytest and numpy).
    assert {"pillow", "torcheval"} <= set(real["torchcodec_test_packages"])
    for lock in locks.values():
        assert set(lock.get("constraints", [])) <= set(locks)
        for requirement in lock["requirements"]:
            assert requirement in real["sandbox_pypi_requirements"] or "==" not in requirement


def test_the_suite_finds_the_provisioned_ffmpeg_first() -> None:
    out = render({"env": "{{ __torchcodec_suite_env }}"}, files=role_files("torchcodec"),
                 data={"ansible_facts": {"env": {"PATH": "/usr/bin:/bin"}}, "torchcodec_test_account": "xpulab",
                       "decode_smoke_accounts": {"xpulab": {"home": "/home/xpulab"}}})
    assert out["env"]["PATH"] == "/opt/ffmpeg/current/bin:/usr/bin:/bin"
    assert out["env"]["HOME"] == "/home/xpulab"
    bare = render({"env": "{{ __torchcodec_suite_env }}"}, files=role_files("torchcodec"),
                  data={"ansible_facts": {}, "torchcodec_ffmpeg_prefix": "/opt/ff", "torchcodec_test_account": "xpulab"})
    assert bare["env"]["PATH"].startswith("/opt/ff/bin:/usr/local/sbin:")
    suite = [t for t in load(ROLE / "tasks" / "test_suite.yml") if t["name"] == "Run TorchCodec's test suite as torchcodec_test_user"]
    assert suite[0]["environment"] == "{{ __torchcodec_suite_env }}"


def test_known_failures_of_the_real_torchcodec_parse_and_name_their_run(tmp_path: Path) -> None:
    real = load(REAL_VARS)
    known = load(ROLE / "vars" / "known_failures.yml")["torchcodec_known_failures"]
    assert real["torchcodec_version"] not in known  # the plugin run never reached the suite
    for key in (real["torchcodec_git_commit"],):
        entries = known[key]
        assert entries, key
        path = tmp_path / "known.json"
        path.write_text(json.dumps(entries))
        parsed = runner.load_known_failures(path)
        assert len(parsed) == len(entries)
        for entry in parsed:
            assert entry.test.startswith("test/") and "measured: " in entry.source and "2026-11-30" in entry.source
        tests = [entry.test for entry in parsed]
        assert len(tests) == len(set(tests)), key


def test_the_real_run_builds_ffmpeg_with_a_software_av1_decoder() -> None:
    """libdav1d for this run only: the role's defaults (CI's fingerprints) stay,
    and the run's package list is the role's Debian list plus libdav1d's."""
    real = load(REAL_VARS)
    ffmpeg = ROOT / "roles" / "ffmpeg"
    assert real["ffmpeg_extra_configure_flags"] == ["--enable-libdav1d"]
    defaults = load(ffmpeg / "defaults" / "main.yml")
    assert "--enable-libdav1d" not in defaults["ffmpeg_configure_flags"] + defaults["ffmpeg_extra_configure_flags"]
    debian = load(ffmpeg / "vars" / "Debian.yml")["__ffmpeg_dev_packages"]
    assert real["ffmpeg_dev_packages"] == [*debian, "libdav1d-dev"]
    assert not [p for p in debian if "dav1d" in p]
    # With libdav1d the CPU decodes AV1; the entry stays for nodes of the default flags, and says so.
    known = load(ROLE / "vars" / "known_failures.yml")["torchcodec_known_failures"]
    av1 = [e for e in known[real["torchcodec_git_commit"]] if "av1" in e["test"]]
    assert [e["test"] for e in av1] == ["test/test_decoders.py::TestVideoDecoder::test_get_frame_at_av1[cpu]"]
    assert "--enable-libdav1d" in av1[0]["reason"] and "default flags" in av1[0]["reason"]

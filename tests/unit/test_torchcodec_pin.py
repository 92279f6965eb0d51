"""The torchcodec role's source method pins a commit (torchcodec_git_commit).

The real assertions of roles/torchcodec/tasks/compat.yml and source.yml are
rendered with Ansible's templar, the role's defaults and vars, and the
xpulab.gpu filters: the compatibility table is keyed by commit, a malformed pin
is refused, and a ref that resolves to another commit fails with both commits
and the way to accept the new one. The sandbox and the torchcodec scenario pin
the fixture's commits (checked against the fixture in test_torchcodec_fixture.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import xpulab  # type: ignore[import-not-found]
import yaml  # type: ignore[import-untyped]
from ansible_templar import ROOT, render, role_files

ROLE = ROOT / "roles" / "torchcodec"
PR_HEAD = "f06c28684edd0570cb44e9d7cbe440b60e37ff0e"
SEED = "b01942c677c7660b54a925cccbe927a78c783287"
MOVED = "0123456789abcdef0123456789abcdef01234567"
SHA = re.compile(r"[0-9a-f]{40}")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def task(file: str, name: str) -> dict[str, Any]:
    (found,) = [t for t in load(ROLE / "tasks" / file) if t.get("name") == name]
    return found


def check(file: str, name: str, **data: Any) -> dict[str, Any]:
    """An assert task of the role rendered: {'ok': all conditions hold, 'msg': its fail_msg}."""
    assert_task = task(file, name)
    args = assert_task["ansible.builtin.assert"]
    conditions = " and ".join(f"({c})" for c in args["that"])
    return render({"ok": "{{ " + conditions + " }}", "msg": args["fail_msg"]},
                  files=role_files("torchcodec"), templates=assert_task.get("vars") or {},
                  data={"inventory_hostname": "node-01", **data})


def compat(**data: Any) -> dict[str, Any]:
    return check("compat.yml", "Check the combination against the compatibility table", **data)


def test_source_rows_are_keyed_by_full_commit_with_a_ref_label_and_a_source() -> None:
    table = load(ROLE / "vars" / "main.yml")["torchcodec_compat"]
    source_rows = [row for row in table if row["method"] == "source"]
    assert {row["torchcodec"] for row in source_rows} == {SEED, PR_HEAD}
    for row in source_rows:
        assert SHA.fullmatch(row["torchcodec"]) and row["ref"] == "refs/pull/558/head" and row["source"]
    known = load(ROLE / "vars" / "known_failures.yml")["torchcodec_known_failures"]
    assert {key for key in known if SHA.fullmatch(key)} == {SEED, PR_HEAD}
    assert set(known) - {SEED, PR_HEAD} == {"0.17.0"}


def test_default_pin_is_the_measured_pull_request_head() -> None:
    defaults = load(ROLE / "defaults" / "main.yml")
    specs = load(ROLE / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert defaults["torchcodec_git_commit"] == specs["torchcodec_git_commit"]["default"] == PR_HEAD
    assert defaults["torchcodec_git_ref"] == "refs/pull/558/head"


def test_table_matches_the_pinned_commit_not_the_ref() -> None:
    out = compat(torchcodec_check_torch="2.13.0", torchcodec_check_ffmpeg="7.1.5")
    assert out["ok"] is True
    table = load(ROLE / "vars" / "main.yml")["torchcodec_compat"]
    assert xpulab.compat_matches(table, "source", "refs/pull/558/head", "2.13.0", "7.1.5") == []
    assert [r["torchcodec"] for r in xpulab.compat_matches(table, "source", SEED, "2.8.0", "6.1.2")] == [SEED]


def test_an_unlisted_commit_is_untested_and_named() -> None:
    out = compat(torchcodec_check_torch="2.13.0", torchcodec_check_ffmpeg="7.1.5", torchcodec_git_commit=MOVED)
    assert out["ok"] is False
    assert f"TorchCodec source refs/pull/558/head at {MOVED}" in out["msg"]
    assert f"- source {PR_HEAD} (refs/pull/558/head): torch 2.13, FFmpeg 7.1.5 (" in out["msg"]
    assert f"- source {SEED} (refs/pull/558/head): torch 2.8, FFmpeg 6.1.2, oneAPI 2025.1 (" in out["msg"]


def test_plugin_rows_stay_keyed_by_version() -> None:
    assert compat(torchcodec_method="plugin", torchcodec_check_torch="2.14.1", torchcodec_check_ffmpeg="7.1.5")["ok"]
    out = compat(torchcodec_method="plugin", torchcodec_version="0.16.0",
                 torchcodec_check_torch="2.14.1", torchcodec_check_ffmpeg="7.1.5")
    assert out["ok"] is False and "TorchCodec plugin 0.16.0\nwith torch 2.14.1" in out["msg"]


@pytest.mark.parametrize(("commit", "ok"), [
    (PR_HEAD, True), (PR_HEAD[:12], False), (PR_HEAD.upper(), False), ("", False),
    ("refs/pull/558/head", False), (PR_HEAD + "0", False),
])
def test_pin_must_be_a_full_commit(commit: str, ok: bool) -> None:
    out = check("compat.yml", "Check that the source method pins a full commit", torchcodec_git_commit=commit)
    assert out["ok"] is ok
    assert "git ls-remote https://github.com/pytorch/torchcodec.git refs/pull/558/head" in out["msg"]


def pin_check(resolved: str) -> dict[str, Any]:
    return check("source.yml", "Check that the ref still resolves to the pinned commit",
                 torchcodec_ls_remote={"rc": 0, "stdout": f"{resolved}\trefs/pull/558/head"})


def test_ref_at_the_pinned_commit_passes() -> None:
    assert pin_check(PR_HEAD)["ok"] is True


def test_moved_ref_fails_naming_both_commits_and_how_to_accept() -> None:
    out = pin_check(MOVED)
    assert out["ok"] is False
    msg = out["msg"]
    assert f"refs/pull/558/head on https://github.com/pytorch/torchcodec.git now resolves to {MOVED}" in msg
    assert f"not to the pinned commit torchcodec_git_commit {PR_HEAD}" in msg
    assert f"torchcodec_git_commit: {MOVED}" in msg and "review it" in msg
    assert "TorchCodec was not built, installed or recorded on node-01" in msg


def test_pin_check_comes_before_anything_that_changes_the_node() -> None:
    names = [t["name"] for t in load(ROLE / "tasks" / "source.yml")]
    first_change = names.index("Read the installed TorchCodec")
    assert names.index("Check that the ref still resolves to the pinned commit") < first_change
    assert names[:names.index("Check that the ref still resolves to the pinned commit")] == [
        "Install git", "Resolve the ref on the remote", "Check that the ref exists"]
    fingerprint = task("source.yml", "Compute the build fingerprint")
    assert fingerprint["vars"]["__commit"] == "{{ torchcodec_git_commit }}"


def test_sandbox_pins_the_fixture_pull_request() -> None:
    group_vars = ROOT / "inventories" / "sandbox" / "group_vars" / "all"
    out = render({"commit": "{{ torchcodec_git_commit }}", "ref": "{{ torchcodec_git_ref }}"},
                 files=[*role_files("torchcodec"), group_vars / "torchcodec_fixture.yml", group_vars / "torchcodec.yml"],
                 data={"xpulab_mirror_url": "http://127.0.0.1:1"})
    commits = load(group_vars / "torchcodec_fixture.yml")["xpulab_torchcodec_fixture_commits"]
    assert out == {"commit": commits["pull_558"], "ref": "refs/pull/558/head"}
    known = load(group_vars / "torchcodec.yml")["torchcodec_known_failures_extra"]
    pr_commits = {commits[k] for k in ("pull_558", "pull_558_advanced", "pull_558_failing_test")}
    assert set(known) == {"0.17.0"} | pr_commits
    scenario = load(ROOT / "molecule" / "torchcodec" / "vars" / "main.yml")
    assert {row["torchcodec"] for row in scenario["torchcodec_fixture_rows"]} == {
        commits["pull_558"], commits["pull_558_failing_test"]}
    assert scenario["torchcodec_fixture_advanced_row"]["torchcodec"] == commits["pull_558_advanced"]

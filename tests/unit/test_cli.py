"""The xpulab command (cli/xpulab_cli): a small two-role playbook driven through `xpulab provision`, then `xpulab history`."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from cli_project import FPS, make_project

import xpulab_cli  # noqa: E402  # cli/ (cli_project puts it on sys.path)
from xpulab_cli import view  # noqa: E402


@dataclass
class Run:
    rc: int
    output: str
    run_id: str
    events: list[dict[str, Any]]
    record: dict[str, Any]
    running: dict[str, Any]


def xpulab(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = xpulab_cli.main(list(argv))
    return rc, out.getvalue()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    work = tmp_path_factory.mktemp("cli")
    playbook, inventory, reports = make_project(work)
    env = {"XPULAB_REPORT_DIR": str(reports), "ANSIBLE_NOCOLOR": "1"}
    with mock.patch.dict(os.environ, env):
        for var in ("XPULAB_HISTORY", "XPULAB_HISTORY_DIR", "XPULAB_HISTORY_ID"):
            os.environ.pop(var, None)
        yield playbook, inventory, reports


def provision(project: tuple[Path, Path, Path], number: int, *extra: str) -> Run:
    playbook, inventory, reports = project
    rc, output = xpulab("provision", "-i", str(inventory), "--playbook", str(playbook),
                        "-e", f"cli_test_run={number}", *extra)
    run_id = re.search(r"^xpulab provision: run (\S+),", output, re.MULTILINE).group(1)  # type: ignore[union-attr]
    events_dir = reports / "runner" / "artifacts" / run_id / "job_events"
    events = [json.loads(p.read_text()) for p in sorted(events_dir.glob("*.json"))]
    record = json.loads((reports / "history" / f"{run_id}.json").read_text())
    running = json.loads((reports / f"running-{number}.json").read_text())
    return Run(rc, output, run_id, events, record, running)


@pytest.fixture(scope="module")
def passed(project: tuple[Path, Path, Path]) -> Run:
    return provision(project, 1)


@pytest.fixture(scope="module")
def failed(project: tuple[Path, Path, Path], passed: Run) -> Run:
    return provision(project, 2, "-e", "cli_test_fail=node2")


def event_seconds(events: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Seconds per host per role, summed here from the job events' task results."""
    sums: dict[str, dict[str, float]] = {}
    for event in events:
        data = event.get("event_data", {})
        if event["event"] in ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"):
            role = data.get("role") or "(none)"
            sums.setdefault(data["host"], {}).setdefault(role, 0.0)
            sums[data["host"]][role] += data["duration"]
    return sums


def printed_table(output: str) -> dict[str, dict[str, float]]:
    block = output.split("Seconds per node per role\n", 1)[1].split("\n\n", 1)[0].splitlines()
    roles = block[0].split()[1:]
    return {cells[0]: {r: float(c) for r, c in zip(roles, cells[1:]) if c != "-"} for cells in map(str.split, block[1:])}


def test_provision_table_matches_the_job_events(passed: Run) -> None:
    assert passed.rc == 0, passed.output
    table = printed_table(passed.output)
    sums = event_seconds(passed.events)
    assert set(table) == {"node1", "node2", "localhost"}
    for host, roles in sums.items():
        assert set(table[host]) == {*roles, "total"}
        for role, seconds in roles.items():
            assert table[host][role] == pytest.approx(seconds, abs=0.051), (host, role)
        assert table[host]["total"] == pytest.approx(sum(roles.values()), abs=0.051)
    assert list(table["node1"])[:2] == ["alpha", "beta"]  # roles in the order they ran
    assert table["node1"]["alpha"] >= 1.0 and table["node2"]["alpha"] >= 1.0  # sleep 1


def test_provision_prints_live_lines_recap_and_summary(passed: Run) -> None:
    assert re.search(r"^ +\d+:\d\d PLAY Two roles$", passed.output, re.MULTILINE)
    assert re.search(r"^ +\d+:\d\d node1 +alpha +Wait a second$", passed.output, re.MULTILINE)
    assert re.search(r"^node1 +: ok=4  changed=3  unreachable=0  failed=0  skipped=1", passed.output, re.MULTILINE)
    assert "# Fleet summary\n\n2 nodes" in passed.output
    assert passed.output.rstrip().endswith("successful: exit 0")


def test_provision_runs_ansible_playbook_as_plain_runs_do(project: tuple[Path, Path, Path], passed: Run) -> None:
    command = json.loads((project[2] / "runner" / "artifacts" / passed.run_id / "command").read_text())
    assert command["cwd"] == str(xpulab_cli.ROOT)  # the checkout's ansible.cfg
    assert command["env"]["ANSIBLE_HOST_KEY_CHECKING"] == "True"  # ansible-runner's default would be False
    assert "ANSIBLE_CACHE_PLUGIN" not in command["env"]  # ansible.cfg's fact cache, not a file per run
    assert command["env"]["XPULAB_HISTORY_ID"] == passed.run_id


def test_history_record_running_then_final(passed: Run) -> None:
    running, record = passed.running, passed.record
    assert running["result"] == "running" and running["finished"] is None
    assert set(running["hosts"]["node1"]["roles"]) == {"alpha", "beta"}  # the closing play sees the role times
    assert record["id"] == passed.run_id == running["id"]
    assert record["result"] == "passed" and record["finished"] >= record["started"]
    assert record["schema"] == 1 and record["check_mode"] is False and record["limit"] is None
    assert record["playbook"].endswith("play.yml") and record["inventory"][0].endswith("inventory.json")
    sums = event_seconds(passed.events)
    counts = {"node1": (4, 3, 0, 1), "node2": (2, 1, 0, 1)}  # node1 runs the run_once tasks
    for host in ("node1", "node2"):
        data = record["hosts"][host]
        assert (data["ok"], data["changed"], data["failed"], data["skipped"]) == counts[host]
        assert data["smoke"] == "passed" and data["fps"] == FPS[host]
        for role, seconds in sums[host].items():
            assert data["roles"][role] == pytest.approx(seconds, abs=0.5)
    assert set(record["hosts"]["localhost"]["roles"]) == {"(none)"}
    assert record["hosts"]["localhost"]["fps"] == {} and record["hosts"]["localhost"]["smoke"] is None


def test_failing_run_exits_non_zero_with_a_failed_record(failed: Run) -> None:
    assert failed.rc == 2, failed.output
    assert re.search(r"^ +\d+:\d\d node2 FAILED at beta: Fail where asked: asked to fail$", failed.output, re.MULTILINE)
    assert failed.output.rstrip().endswith("failed: exit 2")
    record = failed.record
    assert record["result"] == "failed"
    assert record["hosts"]["node2"]["failed"] == 1 and record["hosts"]["node1"]["failed"] == 0
    # node2's report on disk is the first run's: not this run's, so no fps.
    assert record["hosts"]["node2"]["smoke"] is None and record["hosts"]["node2"]["fps"] == {}
    assert record["hosts"]["node1"]["fps"] == FPS["node1"]


def test_history_lists_the_runs_newest_first(passed: Run, failed: Run) -> None:
    rc, output = xpulab("history")
    assert rc == 0
    assert output.index(failed.run_id) < output.index(passed.run_id)
    first = output[output.index(passed.run_id):]
    assert re.search(r"passed +\S+play\.yml -i \S+inventory\.json", output)
    assert "node1: changed=3 failed=0 unreachable=0 smoke=passed fps cpu=512.3 xpu:0=1830.0" in first
    assert "node2: changed=1 failed=0 unreachable=0 smoke=passed fps cpu=498.0" in first
    assert "node2: changed=0 failed=1 unreachable=0 smoke=-\n" in output[:output.index(passed.run_id)]
    rc, output = xpulab("history", "-n", "1", "--json")
    records = json.loads(output)
    assert [r["id"] for r in records] == [failed.run_id]


def test_history_without_runs(tmp_path: Path) -> None:
    with mock.patch.dict(os.environ, {"XPULAB_HISTORY_DIR": str(tmp_path)}):
        rc, output = xpulab("history")
    assert rc == 0 and output.strip() == f"no runs recorded in {tmp_path}"


# ------------------------------------------------------------ the view alone


def event(kind: str, host: str = "", **data: Any) -> dict[str, Any]:
    return {"event": kind, "event_data": {"host": host, **data}}


EVENTS = [
    event("playbook_on_play_start", play="P"),
    event("runner_on_start", "n1", role="xpulab.gpu.ffmpeg", task="Build"),
    event("runner_retry", "n1", res={"stdout": "CC libavcodec/a.o\nCC libavcodec/b.o\n"}),
    event("runner_on_ok", "n1", role="xpulab.gpu.ffmpeg", task="Build", duration=2.25),
    event("runner_on_start", "n1", role=None, task="Report"),
    event("runner_on_failed", "n1", role=None, task="Report", duration=0.5, ignore_errors=True),
    event("runner_on_start", "n2", role="ffmpeg", task="Build"),
    event("runner_on_failed", "n2", role="ffmpeg", task="Build", duration=1.0, res={"msg": "boom\n  here"}),
    event("playbook_on_stats", ok={"n1": 2}, changed={"n1": 1}, failures={"n2": 1}, dark={}, skipped={}),
]


def test_timing_table_and_recap() -> None:
    assert view.role_seconds(EVENTS) == {"n1": {"ffmpeg": 2.25, "(none)": 0.5}, "n2": {"ffmpeg": 1.0}}
    assert view.timing_table(EVENTS).splitlines() == [
        "node   ffmpeg   (none)     total",
        "n1        2.2      0.5       2.8",
        "n2        1.0        -       1.0",
    ]
    assert view.recap(EVENTS).splitlines() == [
        "n1 : ok=2  changed=1  unreachable=0  failed=0  skipped=0  rescued=0  ignored=0",
        "n2 : ok=0  changed=0  unreachable=0  failed=1  skipped=0  rescued=0  ignored=0",
    ]


def test_live_view_on_a_tty_redraws_in_place_and_shows_the_log_tail() -> None:
    out = io.StringIO()
    live = view.LiveView(out, tty=True)
    for item in EVENTS[:3]:
        assert live.handle(item) is True
    frame = out.getvalue().rsplit("\x1b[2F", 1)[-1]  # the last redraw: header + one node
    assert frame.count("\x1b[2K") == 2
    assert re.search(r"n1 ffmpeg +Build +\| CC libavcodec/b\.o\n$", frame)
    for item in EVENTS[3:]:
        live.handle(item)
    text = out.getvalue()
    # printed above the block: cursor up over it, erase, the line, then the block again
    assert re.search(r"\x1b\[3F\x1b\[J +0:00 n2 FAILED at ffmpeg: Build: boom here\n\x1b\[2K", text)
    assert "n1 FAILED" not in text  # an ignored error is no failure
    assert re.search(r"n2 ffmpeg +Build FAILED 0:01\n$", text)


def test_live_view_without_a_tty_appends_plain_lines() -> None:
    out = io.StringIO()
    live = view.LiveView(out, tty=False)
    for item in EVENTS:
        live.handle(item)
    assert "\x1b" not in out.getvalue()
    lines = [line.split(None, 1)[1] for line in out.getvalue().splitlines()]
    assert lines == ["PLAY P", "n1 ffmpeg         Build", "n1 (none)         Report", "n2 ffmpeg         Build",
                     "n2 FAILED at ffmpeg: Build: boom here"]


def test_check_runs_the_post_provision_checks(tmp_path: Path) -> None:
    calls: list[tuple[list[str], Path]] = []

    def run(command: list[str], cwd: Path, check: bool) -> Any:
        calls.append((command, cwd))
        return mock.Mock(returncode=3)

    with mock.patch.object(xpulab_cli.subprocess, "run", run):
        assert xpulab("check", "-i", str(xpulab_cli.ROOT / "lab"), "--", "-k", "ffmpeg")[0] == 3
        assert xpulab("check", "-i", "sandbox")[0] == 3
        assert xpulab("check", "-i", str(tmp_path), "--group", "node-01")[0] == 3
    (first, cwd), (sandbox, _), (second, _) = calls
    assert sandbox[-1] == "--ansible-inventory=inventories/sandbox"  # a bare name under inventories/
    assert cwd == xpulab_cli.ROOT
    assert first[1:] == ["-m", "pytest", "tests/postprovision", "--hosts=ansible://xpulab_nodes",
                         "--ansible-inventory=lab", "-k", "ffmpeg"]
    assert second[-2:] == ["--hosts=ansible://node-01", f"--ansible-inventory={tmp_path}"]


def test_live_view_without_a_tty_reports_a_long_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(view, "LONG", 1.0)
    out = io.StringIO()
    with view.LiveView(out, tty=False) as live:
        live.handle(EVENTS[1])
        time.sleep(2.5)
    assert re.search(r"^ +0:0\d n1 ffmpeg +Build still running 0:0[12]$", out.getvalue(), re.MULTILINE), out.getvalue()


def test_live_view_reads_the_build_log_of_a_long_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(view, "LONG", 0.5)
    monkeypatch.setattr(view, "TAIL_EVERY", 0.5)
    asked: list[tuple[str, str]] = []

    def tail(host: str, glob: str) -> str:
        asked.append((host, glob))
        return "CC libavcodec/h264dec.o\n"

    build = {"event": "runner_on_start", "event_data": {
        "host": "n1", "role": "xpulab.gpu.ffmpeg",
        "task": "Build FFmpeg as the unprivileged build user (log kept in the build directory)"}}
    out = io.StringIO()
    with view.LiveView(out, tty=False, tail=tail) as live:
        live.handle(build)
        live.handle({**EVENTS[1], "event_data": {**EVENTS[1]["event_data"], "host": "n2"}})  # not a build: not read
        time.sleep(2.5)
    assert asked and set(asked) == {("n1", view.BUILD_LOGS["ffmpeg"])}
    assert re.search(r"n1 ffmpeg +Build FFmpeg .* log 0:0\d \| CC libavcodec/h264dec\.o$", out.getvalue(), re.M), \
        out.getvalue()


def test_provision_shows_the_last_line_of_a_build_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the command: the log's last line is read on the node with an ad-hoc command while the task runs."""
    monkeypatch.setattr(view, "LONG", 1.0)
    monkeypatch.setattr(view, "TAIL_EVERY", 1.0)
    logs = tmp_path / "build"
    logs.mkdir()
    task = {"name": "Build it (log kept in the build directory)", "changed_when": False,
            "ansible.builtin.command": {"argv": ["sh", "-c", f"for i in $(seq 1 16); do echo step $i >> {logs}/build.log; "
                                                             "sleep 0.5; done"]}}
    (tmp_path / "roles" / "gamma" / "tasks").mkdir(parents=True)
    (tmp_path / "roles" / "gamma" / "tasks" / "main.yml").write_text(json.dumps([task]))
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"name": "Build", "hosts": "node1", "gather_facts": False, "roles": ["gamma"]}]))
    inventory = tmp_path / "inventory.json"
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(json.dumps({"all": {"hosts": {"node1": local}}}))
    env = {"XPULAB_REPORT_DIR": str(tmp_path / "reports"), "XPULAB_BUILD_LOG_GLOB": f"{logs}/*.log",
           "XPULAB_HISTORY": "0", "ANSIBLE_NOCOLOR": "1"}
    with mock.patch.dict(os.environ, env):
        rc, output = xpulab("provision", "-i", str(inventory), "--playbook", str(playbook))
    assert rc == 0, output
    assert re.search(r"node1 gamma +Build it \(log kept in the build directory\) log 0:0\d \| step \d+$", output, re.M), output

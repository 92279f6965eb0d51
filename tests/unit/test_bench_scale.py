"""Unit tests for sandbox/bin/bench_scale.py (`make bench-scale`): PLAY RECAP parsing,
the slope fit, the table, and the whole plan with podman and ansible-playbook replaced
by a fake lab (the command runner is injected); plus the real runner's CPU accounting."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "sandbox" / "bin"))
import bench_scale as bs  # type: ignore[import-not-found]  # noqa: E402

# The end of a real `ansible-playbook site.yml -i inventories/sandbox` output (trimmed),
# after an earlier play's recap as up.yml would print it: profile_tasks' lines follow.
OUTPUT = """\
PLAY RECAP *********************************************************************
localhost                  : ok=9    changed=1    unreachable=0    failed=0    skipped=2    rescued=0    ignored=0

TASK [xpulab.gpu.fleet_report : Write the fleet report] ************************
ok: [localhost]

PLAY RECAP *********************************************************************
localhost                  : ok=12   changed=0    unreachable=0    failed=0    skipped=4    rescued=0    ignored=0   
xpulab-node1               : ok=218  changed=0    unreachable=0    failed=0    skipped=131  rescued=0    ignored=0   
xpulab-node2               : ok=214  changed=2    unreachable=0    failed=1    skipped=130  rescued=1    ignored=1   

Monday 30 November 2026  18:02:11 +0000 (0:00:00.412)       0:01:31.309 ******
===============================================================================
xpulab.gpu.decode_smoke : Run the smoke test ---------------------------- 4.52s
xpulab.gpu.torchcodec : Run the test suite : ok=3 -------------------------- 4.81s
"""


def recap(nodes: int, changed: int, failed: int = 0) -> str:
    lines = [f"xpulab-node{i}               : ok={200 + i}  changed={changed}    unreachable=0    "
             f"failed={failed}    skipped=130  rescued=0    ignored=0   " for i in range(1, nodes + 1)]
    return "PLAY RECAP ***\nlocalhost : ok=12 changed=0 unreachable=0 failed=0 skipped=4 rescued=0 ignored=0\n" + \
        "\n".join(lines) + "\n"


def test_parse_recap_reads_the_last_recap() -> None:
    hosts = bs.parse_recap(OUTPUT)
    assert list(hosts) == ["localhost", "xpulab-node1", "xpulab-node2"]
    assert hosts["xpulab-node1"] == {"ok": 218, "changed": 0, "unreachable": 0, "failed": 0, "skipped": 131,
                                     "rescued": 0, "ignored": 0}
    assert hosts["localhost"]["ok"] == 12
    assert bs.parse_recap("no recap here\n") == {}


def test_tasks_run_counts_ok_failed_unreachable_rescued() -> None:
    node2 = bs.parse_recap(OUTPUT)["xpulab-node2"]
    # ok already holds changed and ignored; skipped is reported on its own.
    assert bs.tasks_run(node2) == 214 + 1 + 0 + 1
    assert bs.tasks_run({"ok": 3, "unreachable": 1, "skipped": 9}) == 4


def test_slope_least_squares() -> None:
    assert bs.slope([(1, 5.0), (2, 7.0), (4, 11.0)]) == pytest.approx(2.0)
    # The measured no-change runs of docs/reruns.md: 47.6, 53.3, 90.4 s on 1, 2, 4 nodes.
    assert bs.slope([(1, 47.6), (2, 53.3), (4, 90.4)]) == pytest.approx(14.88, abs=0.01)
    assert bs.slope([(2, 5.0), (2, 9.0)]) is None
    assert bs.slope([]) is None


def run(kind: str, nodes: int, wall: float, rc: int = 0, hosts: dict[str, dict[str, int]] | None = None,
        note: str = "") -> bs.Run:
    return bs.Run(kind, nodes, rc, wall, wall / 2, hosts if hosts is not None else bs.parse_recap(OUTPUT),
                  f"{kind}.log", note)


def test_table_rows_ranges_min_and_failure() -> None:
    table = bs.render_table([
        run("warm", 2, 400.0),
        run("nochange", 2, 95.0), run("nochange", 2, 91.3),
        run("nochange", 4, 30.0, rc=2, hosts=bs.parse_recap(recap(3, 0, failed=1))),
    ]).splitlines()
    assert table[0].startswith("| run | N | result | wall s | controller CPU s | tasks run / node |")
    assert table[2] == "| warm | 2 | ok | 400.0 | 200.0 | 216-218 | 130-131 | 0-2 |  |"
    assert table[3] == "| nochange | 2 | ok | 91.3 | 45.6 | 216-218 | 130-131 | 0-2 | min of 2: 95.0, 91.3 |"
    assert table[4].startswith("| nochange | 4 | FAILED rc 2 | 30.0 | 15.0 | 202-204 | 130 | 0 |")
    assert table[4].endswith("| recap lists 3 nodes |")
    assert len(table) == 5


def test_derived_figures() -> None:
    runs = [run("cold", 2, 600.0)] + [run(k, n, w) for n, (warm, nochange) in
                                       {1: (100.0, 20.0), 2: (110.0, 22.0), 4: (130.0, 26.0)}.items()
                                       for k, w in (("warm", warm), ("nochange", nochange))]
    d = bs.derive(runs)
    assert d["nochange_slope_s"] == pytest.approx(2.0)
    assert d["nochange_cpu_slope_s"] == pytest.approx(1.0)
    assert d["warm_slope_s"] == pytest.approx(10.0)
    assert d["warm_over_cold_N2"] == pytest.approx(110 / 600)
    assert (d["nochange_largest_nodes"], d["nochange_largest_s"]) == (4, 26.0)
    assert d["nochange_largest_over_smallest"] == pytest.approx(1.3)
    text = "\n".join(bs.render_derived(d))
    assert "seconds per extra node: 2.00 s (target <= 3 s: met)" in text
    assert "no-change at N=4: 26.00 s (target <= 30 s: met), 1.30x" in text
    assert "warm / cold at N=2: 0.18 (target <= 0.2: met)" in text
    slow = bs.render_derived(bs.derive([run("nochange", 1, 20.0), run("nochange", 4, 50.0)]))
    assert "10.00 s (target <= 3 s: MISSED)" in slow[1] and "50.00 s (target <= 30 s: MISSED)" in slow[5]
    assert bs.render_derived(bs.derive([]))[0].endswith("n/a")


class FakeLab:
    """podman rm, up.yml and site.yml as the plan calls them: nodes come and go, site
    runs write a recap for the nodes that are up, cold runs (and builds) fill the cache."""

    def __init__(self, cache: Path, fail: Mapping[str, int] | None = None, build: Sequence[str] = ()) -> None:
        self.cache, self.fail, self.build = cache, dict(fail or {}), build
        self.nodes = 0
        self.calls: list[str] = []

    def __call__(self, argv: Sequence[str], env: Mapping[str, str], log: Path) -> bs.Done:
        n = int(env["XPULAB_SANDBOX_NODES"])
        assert env["XPULAB_ARTIFACT_CACHE"] == str(self.cache)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as out:
            out.write(f"$ {' '.join(argv)}\n")
        name = {tuple(bs.RM_NODES): "rm", tuple(bs.UP): "up"}.get(tuple(argv), log.stem)
        self.calls.append(f"{name}:{n}" if name in ("rm", "up") else name)
        rc = self.fail.get(name if name != "up" else f"up:{n}", 0)
        if name == "rm":
            self.nodes = 0
        elif name == "up":
            self.nodes = n if rc == 0 else 0
        else:
            kind = name.split("-")[0]
            assert argv == (bs.SITE_NOPROOF if kind == "noproof" else bs.SITE) and self.nodes == n, (name, self.nodes)
            if kind == "cold" or name in self.build:
                self.cache.mkdir(parents=True, exist_ok=True)
                (self.cache / f"ffmpeg-{name}.tar.gz.json").write_text("{}")
            changed = 0 if kind in ("first", "nochange", "noproof") else 77
            log.write_text(log.read_text() + "TASK [x]\n" + recap(n, changed, failed=int(rc != 0)))
        wall = {"rm": 1.0, "up": 10.0, "cold": 600.0, "warm": 100.0 + 10 * n,
                "first": 40.0 + 8 * n, "noproof": 10.0 + n}.get(name.split("-")[0], 20.0 + 2 * n)
        return bs.Done(rc, wall + (5 if name.endswith("-1") else 0), wall / 2)


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(tmp_path), "BENCH_SCALE_DIR": str(tmp_path / "bench"),
            "XPULAB_BENCH_CACHE": str(tmp_path / "cache"), **extra}


def report(tmp_path: Path) -> dict[str, Any]:
    (path,) = (tmp_path / "bench").glob("bench-scale-*.json")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_plan_runs_cold_then_warm_and_nochange_per_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "stale.json").write_text("{}")
    lab = FakeLab(tmp_path / "cache")
    assert bs.main((), env_for(tmp_path), lab, lambda: 100.0) == 0
    assert lab.calls == [
        "rm:2", "up:2", "cold-N2",
        "rm:1", "up:1", "warm-N1", "first-N1", "nochange-N1-1", "nochange-N1-2", "noproof-N1",
        "rm:2", "up:2", "warm-N2", "first-N2", "nochange-N2-1", "nochange-N2-2", "noproof-N2",
        "rm:4", "up:4", "warm-N4", "first-N4", "nochange-N4-1", "nochange-N4-2", "noproof-N4",
    ]
    assert not (tmp_path / "cache" / "stale.json").exists()  # the cold run started from an empty cache
    logs = tmp_path / "bench" / "logs"
    assert {p.name for p in logs.iterdir()} >= {"cold-N2.log", "cold-N2.setup.log", "warm-N4.log", "nochange-N4-2.log"}
    out = capsys.readouterr().out
    assert "| cold | 2 | ok | 600.0 | 300.0 | 201-202 | 130 | 77 |  |" in out
    assert "| nochange | 4 | ok | 28.0 | 14.0 | 201-204 | 130 | 0 | min of 2: 33.0, 28.0 |" in out
    assert "| first | 4 | ok | 72.0 | 36.0 | 201-204 | 130 | 0 |  |" in out
    assert "first no-change run (every role probes itself), seconds per extra node: 8.00 s" in out
    assert "no-change without the proof (diagnostic, --skip-tags smoke,test_suite,report), seconds per extra node: 1.00 s" in out
    assert "| noproof | 4 | ok | 14.0 | 7.0 | 201-204 | 130 | 0 |  |" in out
    assert "no-change, seconds per extra node: 2.00 s (target <= 3 s: met)" in out
    assert "warm / cold at N=2: 0.20 (target <= 0.2: met)" in out
    data = report(tmp_path)
    assert data["failure"] == "" and len(data["runs"]) == 16
    assert data["derived"]["warm_slope_s"] == pytest.approx(10.0)


def test_failed_run_stops_and_exits_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = FakeLab(tmp_path / "cache", fail={"warm-N2": 2})
    assert bs.main((), env_for(tmp_path), lab, lambda: 100.0) == 1
    assert lab.calls[-3:] == ["rm:2", "up:2", "warm-N2"]  # nothing after the failed run
    captured = capsys.readouterr()
    assert "| warm | 2 | FAILED rc 2 | 120.0 |" in captured.out
    assert "| nochange | 1 | ok |" in captured.out  # what ran before is still shown
    assert "bench-scale: FAILED: warm N=2 failed (rc 2): see " in captured.err
    assert str(tmp_path / "bench" / "logs" / "warm-N2.log") in captured.err
    assert report(tmp_path)["failure"].startswith("warm N=2 failed")


def test_failed_setup_stops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = FakeLab(tmp_path / "cache", fail={"up:1": 2})
    assert bs.main((), env_for(tmp_path), lab, lambda: 100.0) == 1
    assert lab.calls[-1] == "up:1" and "warm-N1" not in lab.calls
    assert "fresh nodes for warm N=1 failed (rc 2): see " in capsys.readouterr().err


def test_warm_run_that_builds_is_flagged_and_left_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = FakeLab(tmp_path / "cache", build=["warm-N4"])
    assert bs.main((), env_for(tmp_path, BENCH_SCALE_NODES="2 4"), lab, lambda: 100.0) == 0
    assert "| warm | 4 | ok | 140.0 | 70.0 | 201-204 | 130 | 77 | not warm: built ffmpeg-warm-N4.tar.gz.json |" \
        in capsys.readouterr().out
    assert report(tmp_path)["derived"]["warm_slope_s"] is None


def test_sizes_without_disk_room_are_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "ffmpeg-x.tar.gz.json").write_text("{}")
    lab = FakeLab(tmp_path / "cache")
    settings = {"BENCH_SCALE_NODES": "1 8", "BENCH_SCALE_COLD": "8", "BENCH_SCALE_NOCHANGE_RUNS": "1"}
    assert bs.main((), env_for(tmp_path, **settings), lab, lambda: 10.0) == 0
    assert lab.calls == ["rm:1", "up:1", "warm-N1", "first-N1", "nochange-N1-1", "noproof-N1"]
    out = capsys.readouterr().out
    assert "skipped: cold N=8: needs 16 GiB of podman storage, 10 free" in out
    assert "skipped: warm N=8: needs 16 GiB of podman storage, 10 free" in out
    assert (tmp_path / "cache" / "ffmpeg-x.tar.gz.json").exists()  # a skipped cold run leaves the cache


@pytest.mark.parametrize("extra", [{"BENCH_SCALE_NODES": "1 x"}, {"BENCH_SCALE_NODES": ""},
                                   {"BENCH_SCALE_NOCHANGE_RUNS": "0"}, {"BENCH_SCALE_COLD": "0"},
                                   {"BENCH_SCALE_COLD": ""}])
def test_bad_settings_run_nothing(tmp_path: Path, extra: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    lab = FakeLab(tmp_path / "cache")
    assert bs.main((), env_for(tmp_path, **extra), lab, lambda: 100.0) == 2
    assert lab.calls == []
    assert capsys.readouterr().err.startswith("bench-scale: ")


@pytest.mark.parametrize(("args", "rc"), [(["--help"], 0), (["-h"], 0), (["4"], 2)])
def test_arguments_print_the_settings_and_run_nothing(tmp_path: Path, args: list[str], rc: int,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    lab = FakeLab(tmp_path / "cache")
    assert bs.main(args, env_for(tmp_path), lab, lambda: 100.0) == rc
    assert lab.calls == [] and "BENCH_SCALE_NODES " in capsys.readouterr().out


def test_settings_defaults_and_empty_values() -> None:
    cfg = bs.Config.from_env({"HOME": "/home/u", "XPULAB_BENCH_CACHE": "", "BENCH_SCALE_DIR": ""})
    assert (cfg.nodes, cfg.cold, cfg.repeats, cfg.node_gib) == ((1, 2, 4), (2,), 2, 2.0)
    assert cfg.cache == Path("/home/u/.cache/xpulab/bench-artifacts")  # never "", which is the checkout
    assert cfg.out_dir == ROOT / "reports" / "bench"
    cfg = bs.Config.from_env({"BENCH_SCALE_NODES": " 1 2 4 8 ", "BENCH_SCALE_COLD": "", "XPULAB_BENCH_CACHE": "/c"})
    assert (cfg.nodes, cfg.cold, cfg.cache) == ((1, 2, 4, 8), (), Path("/c"))


def test_no_cold_run_with_a_filled_cache(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "ffmpeg-x.tar.gz.json").write_text("{}")
    lab = FakeLab(tmp_path / "cache")
    assert bs.main((), env_for(tmp_path, BENCH_SCALE_COLD="", BENCH_SCALE_NODES="1"), lab, lambda: 100.0) == 0
    assert lab.calls == ["rm:1", "up:1", "warm-N1", "first-N1", "nochange-N1-1", "nochange-N1-2", "noproof-N1"]
    assert (tmp_path / "cache" / "ffmpeg-x.tar.gz.json").exists()


def test_run_logged_counts_child_cpu_and_logs(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "x.log"
    busy = "import os, time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n" \
           "print('node', os.environ['XPULAB_SANDBOX_NODES'])\nraise SystemExit(3)"
    done = bs.run_logged([sys.executable, "-c", busy], {"XPULAB_SANDBOX_NODES": "4"}, log)
    assert done.rc == 3
    assert done.cpu_s >= 0.25 and done.wall_s >= done.cpu_s * 0.5
    assert log.read_text().startswith(f"$ {sys.executable} -c import os")
    assert log.read_text().splitlines()[-1] == "node 4"

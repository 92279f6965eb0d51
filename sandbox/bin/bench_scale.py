#!/usr/bin/env python3
"""Scaling benchmark of the sandbox main job (`make bench-scale`).

For each fleet size N it times `ansible-playbook site.yml -i inventories/sandbox`:
  cold      only for N in BENCH_SCALE_COLD: empty bench artifact cache, fresh nodes
            (FFmpeg is compiled once);
  warm      fresh nodes (node containers removed, up.yml with N), artifact cached;
  first     site.yml once more on the same nodes: nothing to change, every role
            probes itself (the warm run changed them) and the node record is written;
  nochange  site.yml again, BENCH_SCALE_NOCHANGE_RUNS times: nothing to change, each
            node answers for every role in one call; the table keeps the fastest
            (min) and names the others.
  noproof   a diagnostic, not a way to run: site.yml once more with --skip-tags
            smoke,test_suite,report (no decode smoke test, no TorchCodec suite, and no fleet report, which fails a run without them), to split a
            no-change run's cost per node into the proof's and the rest's; on the
            sandbox the nodes' proof runs on the controller's own cores.
Cold runs go first (they fill the cache), then warm, first and nochange per N. It prints
one Markdown table row per run kind and N, then the slopes per extra node and the
ratios; writes them as JSON to <BENCH_SCALE_DIR>/bench-scale-<UTC>.json and each
run's output to <BENCH_SCALE_DIR>/logs/<kind>-N<n>[-<i>].log (setup: .setup.log).
Stops at the first failed run (exit 1, the table of what ran is still printed).
It replaces the sandbox's node containers (label xpulab.sandbox=node; the mirror
stays) and leaves the last size's nodes up. Settings come from the environment only.

Controller CPU seconds: getrusage(RUSAGE_CHILDREN) user+sys around each
ansible-playbook: it and its forks, and the podman clients they run; conmon and the
container processes are not its children and are not counted.
Tasks run per node: ok + failed + unreachable + rescued from the PLAY RECAP (ok
already holds changed and ignored); skipped is reported on its own.

Environment:
  BENCH_SCALE_NODES          fleet sizes (default "1 2 4"; 8 where disk allows)
  BENCH_SCALE_COLD           sizes that also get a cold run (default "2"; "" for none,
                             which needs a filled cache): ~10 min on 2 cores
  BENCH_SCALE_NOCHANGE_RUNS  no-change runs per size (default 2)
  BENCH_SCALE_NODE_GIB       free GiB of podman storage needed per node (default 2);
                             a size without room for its nodes is skipped, said so
  BENCH_SCALE_DIR            where the JSON and logs go (default reports/bench)
  XPULAB_BENCH_CACHE         the bench artifact cache, as `make bench` uses it (default
                             ~/.cache/xpulab/bench-artifacts); keep it fixed: the path
                             is part of the build fingerprints
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PODMAN = str(ROOT / "sandbox" / "bin" / "podman")
SITE = ["ansible-playbook", "site.yml", "-i", "inventories/sandbox"]
SITE_NOPROOF = [*SITE, "--skip-tags", "smoke,test_suite,report"]
UP = ["ansible-playbook", "sandbox/playbooks/up.yml"]
RM_NODES = [PODMAN, "rm", "-f", "--filter", "label=xpulab.sandbox=node"]
RECAP_HOST = re.compile(r"^(\S+)\s*:\s*((?:[a-z]+=\d+\s*)+)$")
# Issue 14's targets: no-change at N=4, its slope per extra node, warm / cold.
TARGET_NOCHANGE_N4_S = 30.0
TARGET_SLOPE_S = 3.0
TARGET_WARM_OVER_COLD = 0.20


@dataclass(frozen=True)
class Done:
    rc: int
    wall_s: float
    cpu_s: float


Runner = Callable[[Sequence[str], Mapping[str, str], Path], Done]


@dataclass
class Run:
    kind: str
    nodes: int
    rc: int
    wall_s: float
    cpu_s: float
    hosts: dict[str, dict[str, int]]
    log: str
    note: str = ""


@dataclass
class Result:
    runs: list[Run] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failure: str = ""


@dataclass(frozen=True)
class Config:
    nodes: tuple[int, ...]
    cold: tuple[int, ...]
    repeats: int
    node_gib: float
    cache: Path
    out_dir: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        def sizes(name: str, default: str) -> tuple[int, ...]:
            words = env.get(name, default).split()
            if not all(w.isdigit() and int(w) >= 1 for w in words):
                raise ValueError(f"{name} must be whole numbers >= 1, got {' '.join(words)!r}")
            return tuple(int(w) for w in words)

        nodes, cold = sizes("BENCH_SCALE_NODES", "1 2 4"), sizes("BENCH_SCALE_COLD", "2")
        repeats = env.get("BENCH_SCALE_NOCHANGE_RUNS", "2")
        if not nodes or not repeats.isdigit() or int(repeats) < 1:
            raise ValueError("BENCH_SCALE_NODES must name a size and BENCH_SCALE_NOCHANGE_RUNS be >= 1")
        # Empty counts as unset (as in bench.sh): a cold run empties the cache directory.
        cache = env.get("XPULAB_BENCH_CACHE") or f"{env.get('HOME') or Path.home()}/.cache/xpulab/bench-artifacts"
        return cls(nodes, cold, int(repeats), float(env.get("BENCH_SCALE_NODE_GIB") or "2"), Path(cache),
                   ROOT / (env.get("BENCH_SCALE_DIR") or "reports/bench"))


def run_logged(argv: Sequence[str], env: Mapping[str, str], log: Path) -> Done:
    """Run argv in the checkout with env added, its output appended to log; time it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        rc = subprocess.run(list(argv), cwd=ROOT, env={**os.environ, **env}, stdout=out,
                            stderr=subprocess.STDOUT, check=False).returncode
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Done(rc, wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)


def podman_free_gib() -> float:
    """Free GiB where podman keeps its containers."""
    info = subprocess.run([PODMAN, "info", "--format", "{{.Store.GraphRoot}}"],
                          capture_output=True, text=True, check=True)
    return shutil.disk_usage(info.stdout.strip()).free / 2**30


def parse_recap(text: str) -> dict[str, dict[str, int]]:
    """Counts per host from the last PLAY RECAP in an ansible-playbook output."""
    start = text.rfind("PLAY RECAP")
    hosts: dict[str, dict[str, int]] = {}
    if start < 0:
        return hosts
    for line in text[start:].splitlines()[1:]:
        match = RECAP_HOST.match(line.strip())
        if match:
            hosts[match[1]] = {k: int(v) for k, v in re.findall(r"([a-z]+)=(\d+)", match[2])}
    return hosts


def tasks_run(counts: Mapping[str, int]) -> int:
    return sum(counts.get(k, 0) for k in ("ok", "failed", "unreachable", "rescued"))


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x; None without two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def bench(cfg: Config, runner: Runner, free_gib: Callable[[], float],
          say: Callable[[str], None] = print) -> Result:
    """Run the plan; stop at the first failure."""
    result = Result()
    logs = cfg.out_dir / "logs"

    def env(n: int) -> dict[str, str]:
        return {"XPULAB_ARTIFACT_CACHE": str(cfg.cache), "XPULAB_SANDBOX_NODES": str(n), "ANSIBLE_FORCE_COLOR": "0"}

    def fresh(kind: str, n: int) -> bool:
        need = n * cfg.node_gib
        if (free := free_gib()) < need:
            result.skipped.append(f"{kind} N={n}: needs {need:.0f} GiB of podman storage, {free:.0f} free")
            say(f"bench-scale: skipped {result.skipped[-1]}")
            return False
        log = logs / f"{kind}-N{n}.setup.log"
        log.unlink(missing_ok=True)
        say(f"bench-scale: fresh nodes for {kind} N={n} (log {log})")
        for argv in (RM_NODES, UP):
            if (done := runner(argv, env(n), log)).rc != 0:
                result.failure = f"fresh nodes for {kind} N={n} failed (rc {done.rc}): see {log}"
                return False
        return True

    def site(kind: str, n: int, name: str) -> Run:
        log = logs / f"{name}.log"
        log.unlink(missing_ok=True)
        say(f"bench-scale: {kind} N={n} (log {log})")
        done = runner(SITE_NOPROOF if kind == "noproof" else SITE, env(n), log)
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        run = Run(kind, n, done.rc, round(done.wall_s, 1), round(done.cpu_s, 1), parse_recap(text), str(log))
        result.runs.append(run)
        say(f"bench-scale: {kind} N={n}: {run.wall_s} s, rc {run.rc}")
        if run.rc != 0:
            result.failure = f"{kind} N={n} failed (rc {run.rc}): see {log}"
        return run

    # Cold runs first: they fill the cache the warm runs use.
    for kind, n in [("cold", n) for n in cfg.cold] + [("warm", n) for n in cfg.nodes]:
        if not fresh(kind, n):
            if result.failure:
                return result
            continue
        if kind == "cold":
            shutil.rmtree(cfg.cache, ignore_errors=True)
        before = set(cfg.cache.glob("*.json"))
        run = site(kind, n, f"{kind}-N{n}")
        if kind == "warm" and (built := sorted(p.name for p in set(cfg.cache.glob("*.json")) - before)):
            run.note = "not warm: built " + ", ".join(built)
        if kind == "warm" and run.rc == 0:
            run = site("first", n, f"first-N{n}")
        for i in range(cfg.repeats if kind == "warm" else 0):
            if run.rc != 0:
                break
            run = site("nochange", n, f"nochange-N{n}-{i + 1}")
        if kind == "warm" and run.rc == 0:
            run = site("noproof", n, f"noproof-N{n}")
        if run.rc != 0:
            return result
    return result


def kept(runs: Sequence[Run]) -> list[Run]:
    """One run per (kind, N): a failed one if any, else the fastest, noting the others."""
    groups: dict[tuple[str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.kind, run.nodes), []).append(run)
    out = []
    for group in groups.values():
        failed = [r for r in group if r.rc != 0]
        best = failed[0] if failed else min(group, key=lambda r: r.wall_s)
        if len(group) > 1 and not failed:
            best = Run(**{**asdict(best), "note": f"min of {len(group)}: " + ", ".join(f"{r.wall_s}" for r in group)})
        out.append(best)
    return out


def per_node(run: Run, key: Callable[[Mapping[str, int]], int]) -> str:
    values = [key(c) for host, c in run.hosts.items() if host != "localhost"]
    if not values:
        return "-"
    return str(min(values)) if min(values) == max(values) else f"{min(values)}-{max(values)}"


def render_table(runs: Sequence[Run]) -> str:
    lines = ["| run | N | result | wall s | controller CPU s | tasks run / node | skipped / node "
             "| changed / node | note |", "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in kept(runs):
        nodes = sum(1 for host in r.hosts if host != "localhost")
        note = "; ".join(filter(None, [r.note, f"recap lists {nodes} nodes" if nodes != r.nodes else ""]))
        lines.append(f"| {r.kind} | {r.nodes} | {'ok' if r.rc == 0 else f'FAILED rc {r.rc}'} | {r.wall_s:.1f} "
                     f"| {r.cpu_s:.1f} | {per_node(r, tasks_run)} | {per_node(r, lambda c: c.get('skipped', 0))} "
                     f"| {per_node(r, lambda c: c.get('changed', 0))} | {note} |")
    return "\n".join(lines)


def derive(runs: Sequence[Run]) -> dict[str, float | None]:
    """Slopes per extra node (passed runs; warm runs that built are left out), warm / cold
    per N with both (warm_over_cold_N<n>), and no-change at the largest N."""
    ok = {(r.kind, r.nodes): r for r in kept(runs) if r.rc == 0}
    nochange = sorted((n, r) for (k, n), r in ok.items() if k == "nochange")
    first = sorted((n, r) for (k, n), r in ok.items() if k == "first")
    noproof = sorted((n, r) for (k, n), r in ok.items() if k == "noproof")
    warm = {n: r for (k, n), r in ok.items() if k == "warm" and not r.note}
    out: dict[str, float | None] = {
        "first_slope_s": slope([(float(n), r.wall_s) for n, r in first]),
        "nochange_slope_s": slope([(float(n), r.wall_s) for n, r in nochange]),
        "nochange_cpu_slope_s": slope([(float(n), r.cpu_s) for n, r in nochange]),
        "noproof_slope_s": slope([(float(n), r.wall_s) for n, r in noproof]),
        "warm_slope_s": slope([(float(n), r.wall_s) for n, r in warm.items()]),
        "nochange_largest_nodes": nochange[-1][0] if nochange else None,
        "nochange_largest_s": nochange[-1][1].wall_s if nochange else None,
        "nochange_largest_over_smallest": nochange[-1][1].wall_s / nochange[0][1].wall_s if nochange else None,
    }
    for n in sorted(n for (k, n) in ok if k == "cold" and n in warm):
        out[f"warm_over_cold_N{n}"] = warm[n].wall_s / ok["cold", n].wall_s
    return out


def render_derived(d: Mapping[str, float | None]) -> list[str]:
    def fig(value: float | None, unit: str, target: float | None = None) -> str:
        if value is None:
            return "n/a"
        met = "" if target is None else f" (target <= {target:g}{unit}: {'met' if value <= target else 'MISSED'})"
        return f"{value:.2f}{unit}{met}"

    largest = d["nochange_largest_nodes"]
    target = TARGET_NOCHANGE_N4_S if largest == 4 else None
    return [
        f"- first no-change run (every role probes itself), seconds per extra node: {fig(d.get('first_slope_s'), ' s')}",
        f"- no-change, seconds per extra node: {fig(d['nochange_slope_s'], ' s', TARGET_SLOPE_S)}",
        f"- no-change, controller CPU seconds per extra node: {fig(d['nochange_cpu_slope_s'], ' s')}",
        "- no-change without the proof (diagnostic, --skip-tags smoke,test_suite,report), seconds per extra node: "
        f"{fig(d.get('noproof_slope_s'), ' s')}",
        f"- warm (fresh nodes, artifact cached), seconds per extra node: {fig(d['warm_slope_s'], ' s')}",
        f"- no-change at N={largest or '-'}: {fig(d['nochange_largest_s'], ' s', target)}, "
        f"{fig(d['nochange_largest_over_smallest'], 'x')} that of the smallest N",
    ] + [f"- warm / cold at N={key.rsplit('N', 1)[1]}: {fig(value, '', TARGET_WARM_OVER_COLD)}"
         for key, value in d.items() if key.startswith("warm_over_cold_N")]


def main(args: Sequence[str] = (), env: Mapping[str, str] = os.environ, runner: Runner = run_logged,
         free_gib: Callable[[], float] = podman_free_gib) -> int:
    if args:  # settings come from the environment only; any argument (--help) prints them
        print(__doc__)
        return 0 if args[0] in ("-h", "--help") else 2
    try:
        cfg = Config.from_env(env)
    except ValueError as err:
        print(f"bench-scale: {err}", file=sys.stderr)
        return 2
    if not cfg.cold and not any(cfg.cache.glob("*.json")):
        print(f"bench-scale: the bench artifact cache {cfg.cache} is empty: warm runs need it filled; "
              "set BENCH_SCALE_COLD (e.g. 2) or run `make bench` first", file=sys.stderr)
        return 2
    started = datetime.now(timezone.utc)
    result = bench(cfg, runner, free_gib)
    derived = derive(result.runs)
    print("\n" + render_table(result.runs) + "\n")
    print("\n".join(render_derived(derived)))
    for line in result.skipped:
        print(f"- skipped: {line}")
    report = cfg.out_dir / f"bench-scale-{started:%Y%m%dT%H%M%SZ}.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    report.write_text(json.dumps({
        "started": started.isoformat(timespec="seconds"), "commit": commit.stdout.strip(), "cpus": os.cpu_count(),
        "cache": str(cfg.cache),
        "nodes": cfg.nodes, "cold": cfg.cold, "nochange_runs": cfg.repeats, "runs": [asdict(r) for r in result.runs],
        "derived": derived, "skipped": result.skipped, "failure": result.failure}, indent=2) + "\n")
    print(f"\nbench-scale: results in {report}")
    if result.failure:
        print(f"bench-scale: FAILED: {result.failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Live view of an ansible-runner job (one line per node) and the tables printed after it."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

Event = dict[str, Any]
NO_ROLE = "(none)"
RESULTS = ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable")
# A task running this long is a long step: its elapsed time is shown (TTY) or
# a "still running" line is appended every LONG seconds (no TTY).
LONG = 30.0
# The FFmpeg and TorchCodec builds write build.log in their build directory
# (task names say "log kept in the build directory"): while one runs, the view
# reads that log's last line on the node every TAIL_EVERY seconds. The globs
# are the roles' default build roots; XPULAB_BUILD_LOG_GLOB overrides them.
BUILD_TASK = "log kept in the build directory"
BUILD_LOGS = {"ffmpeg": "/var/lib/xpulab/build/ffmpeg/*/build.log",
              "torchcodec": "/var/lib/xpulab/build/torchcodec/*/build.log"}
TAIL_EVERY = 10.0
Tail = Callable[[str, str], str]  # (host, log glob) -> the newest matching log's last line, "" if none


def short_role(role: str | None) -> str:
    return str(role).rsplit(".", 1)[-1] if role else NO_ROLE


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


def role_seconds(events: list[Event]) -> dict[str, dict[str, float]]:
    """Seconds per host per role: the sum of the durations of the hosts' task results."""
    table: dict[str, dict[str, float]] = {}
    for event in events:
        data = event.get("event_data") or {}
        if event.get("event") in RESULTS and data.get("host"):
            roles = table.setdefault(str(data["host"]), {})
            role = short_role(data.get("role"))
            roles[role] = roles.get(role, 0.0) + float(data.get("duration") or 0.0)
    return table


def timing_table(events: list[Event]) -> str:
    """The per-node per-role table (seconds, one decimal; - where a node ran no task of a role), roles in order of first run."""
    table = role_seconds(events)
    roles: list[str] = []
    for host_roles in table.values():
        roles += [r for r in host_roles if r not in roles]
    width = max([len("node"), *map(len, table)])
    head = [f"{'node':<{width}}", *(f"{r:>{max(len(r), 7)}}" for r in roles), f"{'total':>8}"]
    lines = ["  ".join(head)]
    for host in sorted(table):
        cells = [f"{table[host][r]:>{max(len(r), 7)}.1f}" if r in table[host] else f"{'-':>{max(len(r), 7)}}"
                 for r in roles]
        lines.append("  ".join([f"{host:<{width}}", *cells, f"{sum(table[host].values()):>8.1f}"]))
    return "\n".join(lines)


def recap(events: list[Event]) -> str:
    """The PLAY RECAP lines from the playbook_on_stats event."""
    stats = next((e.get("event_data") or {} for e in events if e.get("event") == "playbook_on_stats"), {})
    keys = (("ok", "ok"), ("changed", "changed"), ("unreachable", "dark"), ("failed", "failures"),
            ("skipped", "skipped"), ("rescued", "rescued"), ("ignored", "ignored"))
    hosts = sorted({h for _, key in keys for h in stats.get(key) or {}})
    width = max([0, *map(len, hosts)])
    return "\n".join(f"{h:<{width}} : " + "  ".join(f"{name}={(stats.get(key) or {}).get(h, 0)}" for name, key in keys)
                     for h in hosts)


@dataclass
class Node:
    role: str = ""
    task: str = "(waiting)"
    since: float = 0.0
    took: float = 0.0  # seconds the last finished task took
    running: bool = False
    state: str = ""  # "", "failed", "unreachable"
    log: str = ""  # last line of the build log, or of a retried task's (a wait loop's) output
    tailing: bool = False  # a read of the build log is under way
    tailed: float = 0.0  # when the build log was last read


class LiveView:
    """Follows the job's events: redraws one line per node in place on a TTY, appends lines otherwise."""

    def __init__(self, out: TextIO | None = None, tty: bool | None = None, tail: Tail | None = None) -> None:
        self.out = out or sys.stdout
        self.tail = tail
        self.tty = self.out.isatty() if tty is None else tty
        self.start = time.monotonic()
        self.nodes: dict[str, Node] = {}
        self.events: list[Event] = []
        self.play = ""
        self._drawn = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> LiveView:
        self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._ticker.join()
        with self._lock:
            self._draw()

    def _tick(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(1.0):
            with self._lock:
                self._read_build_logs()
                if self.tty:
                    self._draw()
                elif time.monotonic() - last >= LONG:
                    last = time.monotonic()
                    for name, node in self.nodes.items():
                        if node.running and last - node.since >= LONG:
                            self._emit(self._line(name, node, "still running"))

    def _read_build_logs(self) -> None:
        """Start a read of the build log's last line for each node in a long build (one at a time per node)."""
        now = time.monotonic()
        for name, node in self.nodes.items():
            glob = os.environ.get("XPULAB_BUILD_LOG_GLOB") or BUILD_LOGS.get(node.role, "")
            if (self.tail and glob and node.running and BUILD_TASK in node.task and not node.tailing
                    and now - node.since >= LONG and now - node.tailed >= TAIL_EVERY):
                node.tailing, node.tailed = True, now
                threading.Thread(target=self._read_one, args=(name, node, node.since, glob), daemon=True).start()

    def _read_one(self, name: str, node: Node, since: float, glob: str) -> None:
        try:
            line = self.tail(name, glob) if self.tail else ""
        except Exception:  # noqa: BLE001 - a failed read leaves the view as it was
            line = ""
        with self._lock:
            node.tailing = False
            if line and node.running and node.since == since:  # still the same task
                node.log = line.strip()[:200]
                if not self.tty:
                    self._emit(self._line(name, node, "log"))

    def _line(self, name: str, node: Node, note: str = "") -> str:
        now = time.monotonic()
        width = max(map(len, self.nodes))
        seconds = now - node.since if node.running else node.took
        elapsed = clock(seconds) if node.since and seconds >= 1 else ""
        status = node.state.upper() if node.state else note
        text = f"{clock(now - self.start):>7} {name:<{width}} {node.role:<14} {node.task} {status} {elapsed}"
        if node.log and node.running:
            text += f" | {node.log}"
        return text.rstrip()

    def _emit(self, line: str) -> None:
        """Print a line above the live block (TTY) or append it."""
        if self.tty and self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0
        self.out.write(line + "\n")
        if self.tty:
            self._draw()
        self.out.flush()

    def _draw(self) -> None:
        if not self.tty:
            return
        cols = shutil.get_terminal_size().columns
        lines = [f"{clock(time.monotonic() - self.start):>7} {self.play}"[:cols]]
        lines += [self._line(name, node)[:cols] for name, node in self.nodes.items()]
        self.out.write((f"\x1b[{self._drawn}F" if self._drawn else "") + "".join(f"\x1b[2K{line}\n" for line in lines))
        self._drawn = len(lines)
        self.out.flush()

    def handle(self, event: Event) -> bool:
        """ansible_runner event_handler: update the view; keep every event."""
        with self._lock:
            self.events.append(event)
            self._update(event)
        return True

    def _update(self, event: Event) -> None:
        kind = event.get("event")
        data = event.get("event_data") or {}
        host = str(data.get("host") or "")
        if kind == "playbook_on_play_start":
            self.play = str(data.get("play") or data.get("name") or "")
            if not self.tty:
                self._emit(f"{clock(time.monotonic() - self.start):>7} PLAY {self.play}")
            return
        if not host:
            return
        node = self.nodes.setdefault(host, Node())
        if kind == "runner_on_start":
            role, task = short_role(data.get("role")), str(data.get("task") or "")
            moved = (role, task) != (node.role, node.task)
            node.role, node.task, node.since, node.running, node.log = role, task, time.monotonic(), True, ""
            if moved and not self.tty:
                self._emit(self._line(host, node))
        elif kind == "runner_retry":
            lines = ((data.get("res") or {}).get("stdout") or "").strip().splitlines()
            node.log = lines[-1].strip() if lines else node.log
        elif kind in RESULTS:
            node.running = False
            node.took = float(data.get("duration") or 0.0)
            if kind == "runner_on_unreachable" or (kind == "runner_on_failed" and not data.get("ignore_errors")):
                node.state = "unreachable" if kind == "runner_on_unreachable" else "failed"
                res = data.get("res") or {}
                self._emit(f"{clock(time.monotonic() - self.start):>7} {host} {node.state.upper()} at {node.role}: {node.task}: "
                           + " ".join(str(res.get("msg") or res.get("stderr") or "").split())[:500])
        self._draw()

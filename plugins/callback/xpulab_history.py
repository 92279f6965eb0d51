"""Record every ansible-playbook run in the xpulab run history (one JSON file per run)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: xpulab_history
type: notification
short_description: Record each run in the xpulab run history
description:
  - Writes one JSON file per ansible-playbook run to the history directory
    (C(<report dir>/history/<id>.json), the id being the UTC start time and
    8 random hex digits, so names sort by time).
  - The record holds the run's playbook, inventory, limit, tags, check mode,
    result, and per host the recap counts, the seconds spent in each role
    (tasks outside roles under C((none))), and the decode smoke status and
    fps per device of the node report this run wrote
    (C(<report dir>/nodes/<host>.json)).
  - It is written atomically at every play start (C(result=running)) and at
    the end of the run (C(passed) or C(failed)). An error while writing is a
    warning; it never fails the run.
author:
  - xpulab (@xpulab)
requirements:
  - enable in C(callbacks_enabled) (ansible.cfg of the checkout does)
options:
  enabled:
    description: Record runs; C(XPULAB_HISTORY=0) turns recording off.
    type: bool
    default: true
    env:
      - name: XPULAB_HISTORY
    ini:
      - section: callback_xpulab_history
        key: enabled
  dir:
    description:
      - History directory. Default C(history/) in the report directory, which is
        C($XPULAB_REPORT_DIR), else C(reports/) under the directory
        ansible-playbook was started from (as the fleet_report role computes it).
    type: path
    env:
      - name: XPULAB_HISTORY_DIR
    ini:
      - section: callback_xpulab_history
        key: dir
"""

import contextlib
import getpass
import json
import os
import secrets
import socket
import tempfile
import time
from datetime import datetime, timezone
from typing import Any

from ansible import context
from ansible.plugins.callback import CallbackBase

SCHEMA = 1
COUNTS = ("ok", "changed", "failed", "unreachable", "skipped", "rescued", "ignored")
NO_ROLE = "(none)"


def report_dir() -> str:
    """The fleet_report role's report directory: $XPULAB_REPORT_DIR, else $PWD/reports."""
    default = os.path.join(os.environ.get("PWD") or os.getcwd(), "reports")
    return os.path.realpath(os.environ.get("XPULAB_REPORT_DIR") or default)


def node_smoke(path: str, since: float, reported: bool = False) -> tuple[str | None, dict[str, float]]:
    """(smoke status, fps per device of the first clip) of a node report this run wrote.

    This run wrote it when a task reported it as its dest (`reported`; an
    unchanged copy keeps its mtime) or when it was modified at or after `since`.
    """
    try:
        if not reported and os.stat(path).st_mtime < since:
            return None, {}
        with open(path, encoding="utf-8") as handle:
            smoke = (json.load(handle) or {}).get("smoke")
    except (OSError, ValueError, AttributeError):
        return None, {}
    if not isinstance(smoke, dict):
        return None, {}
    clips = smoke.get("clips") or [{}]
    results = clips[0].get("results") if isinstance(clips[0], dict) else None
    fps = {str(device): float(res["fps"]) for device, res in (results or {}).items()
           if isinstance(res, dict) and isinstance(res.get("fps"), (int, float)) and not isinstance(res["fps"], bool)}
    status = smoke.get("status")
    return (str(status) if status is not None else None), fps


def utc(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "xpulab.gpu.xpulab_history"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._record: dict[str, Any] | None = None
        self._t0 = 0.0
        self._path = ""
        self._starts: dict[tuple[str, str], tuple[float, str]] = {}
        self._hosts: dict[str, dict[str, Any]] = {}
        self._dests: set[str] = set()  # files tasks of this run wrote (their result's dest)

    # ------------------------------------------------------------ record

    def _host(self, name: str) -> dict[str, Any]:
        return self._hosts.setdefault(name, {**dict.fromkeys(COUNTS, 0), "roles": {}})

    def _write(self) -> None:
        if self._record is None:
            return
        tmp = ""
        try:
            nodes = os.path.join(report_dir(), "nodes")
            for name, host in self._hosts.items():
                path = os.path.join(nodes, f"{name}.json")
                host["smoke"], host["fps"] = node_smoke(path, self._t0, os.path.realpath(path) in self._dests)
            self._record["hosts"] = {name: self._hosts[name] for name in sorted(self._hosts)}
            directory = os.path.dirname(self._path)
            os.makedirs(directory, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=directory, prefix=".", suffix=".tmp",
                                             delete=False, encoding="utf-8") as handle:
                tmp = handle.name
                json.dump(self._record, handle, indent=2, sort_keys=True)
                handle.write("\n")
            os.chmod(tmp, 0o644)
            os.replace(tmp, self._path)
        except Exception as exc:  # pylint: disable=broad-except  # history must never break a run
            self._display.warning(f"xpulab_history: could not write {self._path}: {exc}")
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def v2_playbook_on_start(self, playbook: Any) -> None:
        if self._record is not None or not self.get_option("enabled"):
            return
        try:
            self._t0 = time.time()
            run_id = os.environ.get("XPULAB_HISTORY_ID") or (
                time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._t0)) + "-" + secrets.token_hex(4))
            directory = self.get_option("dir") or os.path.join(report_dir(), "history")
            self._path = os.path.join(directory, f"{run_id}.json")
            args = context.CLIARGS
            tags = args.get("tags") or ()
            self._record = {
                "schema": SCHEMA, "id": run_id, "started": utc(self._t0), "finished": None,
                "playbook": " ".join(args.get("args") or ()) or getattr(playbook, "_file_name", None),
                "inventory": list(args.get("inventory") or ()),
                "limit": args.get("subset") or None,
                "tags": list(tags), "skip_tags": list(args.get("skip_tags") or ()),
                "check_mode": bool(args.get("check")),
                "controller": socket.gethostname(), "user": getpass.getuser(),
                "result": "running", "hosts": {},
            }
        except Exception as exc:  # pylint: disable=broad-except
            self._record = None
            self._display.warning(f"xpulab_history: not recording this run: {exc}")

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._write()

    # ------------------------------------------------------------ timing

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        role = getattr(getattr(task, "_role", None), "_role_name", None)
        short = str(role).rsplit(".", 1)[-1] if role else NO_ROLE
        self._starts[(host.get_name(), task._uuid)] = (time.time(), short)

    def _done(self, result: Any, count: str) -> None:
        name = result._host.get_name()
        host = self._host(name)
        start = self._starts.pop((name, result._task._uuid), None)
        if start is not None:
            roles = host["roles"]
            roles[start[1]] = round(roles.get(start[1], 0.0) + time.time() - start[0], 3)
        host[count] += 1
        if count == "ok":
            host["changed"] += bool(result._result.get("changed"))
            if isinstance(result._result.get("dest"), str):
                self._dests.add(os.path.realpath(result._result["dest"]))

    def v2_runner_on_ok(self, result: Any) -> None:
        self._done(result, "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._done(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._done(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._done(result, "unreachable")

    # ------------------------------------------------------------ end

    def v2_playbook_on_stats(self, stats: Any) -> None:
        if self._record is None:
            return
        failed = False
        for name in sorted(set(stats.processed) | set(self._hosts)):
            summary = stats.summarize(name)
            host = self._host(name)
            host.update({
                "ok": summary["ok"], "changed": summary["changed"], "failed": summary["failures"],
                "unreachable": summary["unreachable"], "skipped": summary["skipped"],
                "rescued": summary["rescued"], "ignored": summary["ignored"],
            })
            failed = failed or bool(summary["failures"] or summary["unreachable"])
        self._record["result"] = "failed" if failed else "passed"
        self._record["finished"] = utc(time.time())
        self._write()

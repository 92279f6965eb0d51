"""The lock directories xpulab takes (modules xpulab_cache_lock and xpulab_state).

A lock is a directory made with mkdir (atomic) holding holder.json, the run
that holds it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any


def read_holder(path: str) -> dict[str, Any]:
    try:
        with open(os.path.join(path, "holder.json"), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def runs(pid: Any) -> bool:
    """Whether process `pid` of this machine is an ansible-playbook."""
    try:
        with open(f"/proc/{int(pid)}/cmdline", "rb") as handle:
            return b"ansible-playbook" in handle.read()
    except (OSError, ValueError, TypeError):
        return False


def describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "a run that left no record"
    return (f"run {holder.get('id')} from {holder.get('controller')} (ansible-playbook pid {holder.get('pid')}, "
            f"user {holder.get('user')}), started {holder.get('started')}")


def stale(holder: dict[str, Any], me: dict[str, Any], gone: list[str], local_pids: bool) -> bool:
    """A lock this run may take over: its own, a holder named gone, or (local pids) a gone run's of this machine."""
    if holder.get("id") == me.get("id") or str(holder.get("id") or "") in gone:
        return True
    return (local_pids and bool(holder) and holder.get("controller") == me.get("controller")
            and not runs(holder.get("pid")))


def take(path: str, me: dict[str, Any], wait: int, delay: int, gone: list[str] | None = None,
         local_pids: bool = True) -> dict[str, Any]:
    """Take the lock; raise TimeoutError naming the holder after `wait` seconds."""
    start = time.monotonic()
    taken_over: dict[str, Any] | None = None
    while True:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            holder = read_holder(path)
            if stale(holder, me, gone or [], local_pids):
                # Rename first: of two runs taking over, only one wins the rename.
                aside = f"{path}.stale-{me.get('id')}-{os.getpid()}"
                try:
                    os.rename(path, aside)
                except OSError:
                    continue
                shutil.rmtree(aside, ignore_errors=True)
                taken_over = holder
                continue
            waited = time.monotonic() - start
            if waited >= wait:
                raise TimeoutError(describe(holder)) from None
            time.sleep(min(delay, max(wait - waited, 0.1)))
            continue
        tmp = os.path.join(path, ".holder.json")
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(json.dumps(me, sort_keys=True) + "\n")
        os.replace(tmp, os.path.join(path, "holder.json"))
        return {"taken": True, "taken_over": taken_over, "waited": int(time.monotonic() - start)}

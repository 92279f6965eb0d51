"""xpulab: provision nodes through ansible-runner with a live view, run the post-provision checks, list past runs.

`ansible-playbook site.yml -i INV` keeps working unchanged: this command is a layer
over it (the same playbook, ansible.cfg and inventory), and the run history is
written by the callback plugin xpulab.gpu.xpulab_history for either way of running.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

# The checkout this package lives in (installed editable by the Makefile's venv target).
ROOT = Path(__file__).resolve().parents[2]


def report_dir() -> Path:
    """The fleet_report role's report directory: $XPULAB_REPORT_DIR, else $PWD/reports."""
    default = Path(os.environ.get("PWD") or os.getcwd()) / "reports"
    return Path(os.environ.get("XPULAB_REPORT_DIR") or default).resolve()


def history_dir() -> Path:
    return Path(os.environ.get("XPULAB_HISTORY_DIR") or report_dir() / "history")


def _path_arg(path: str) -> str:
    """A path given on our command line, for ansible-playbook started in ROOT."""
    full = Path(os.path.abspath(path))  # a link such as lab -> inventories/lab stays as given
    return os.path.relpath(full, ROOT) if full.is_relative_to(ROOT) else str(full)


def inventory_arg(name: str) -> str:
    """-i NAME: a bare name of an inventory under inventories/ (sandbox, lab) is that one, else a path."""
    return f"inventories/{name}" if "/" not in name and (ROOT / "inventories" / name).is_dir() else _path_arg(name)


def ansible_setting(name: str) -> str:
    """A setting as ansible-playbook started in ROOT sees it ($ANSIBLE_CONFIG, else ROOT's ansible.cfg)."""
    from ansible.config.manager import ConfigManager  # pylint: disable=import-outside-toplevel

    conf = os.environ.get("ANSIBLE_CONFIG") or str(ROOT / "ansible.cfg")
    return str(ConfigManager(conf_file=conf).get_config_value(name))


def log_tail(inventory: str, env: dict[str, str]) -> Callable[[str, str], str]:
    """(host, glob) -> last line of the newest file matching glob on host, read by an ad-hoc command."""
    import ansible_runner  # pylint: disable=import-outside-toplevel

    def tail(host: str, glob: str) -> str:
        script = f'f=$(ls -t {glob} 2>/dev/null | head -n 1); test -n "$f" && tail -n 1 "$f"'
        with tempfile.TemporaryDirectory(prefix="xpulab-tail-") as private:
            job = ansible_runner.run(
                private_data_dir=private, project_dir=str(ROOT), host_pattern=host, inventory=str(ROOT / inventory),
                module="ansible.builtin.command", module_args=f"sh -c {shlex.quote(script)}",
                envvars={**env, "XPULAB_HISTORY": "0", "ANSIBLE_CONFIG": os.environ.get("ANSIBLE_CONFIG")
                         or str(ROOT / "ansible.cfg")},
                quiet=True, suppress_env_files=True)
            for event in job.events:
                if event.get("event") == "runner_on_ok":
                    lines = str((event["event_data"].get("res") or {}).get("stdout") or "").splitlines()
                    return lines[-1] if lines else ""
        return ""

    return tail


def provision(args: argparse.Namespace) -> int:
    import ansible_runner  # pylint: disable=import-outside-toplevel  # only this command needs it

    from .view import LiveView, recap, timing_table  # pylint: disable=import-outside-toplevel

    reports = report_dir()
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)
    cmdline = ["-i", inventory_arg(args.inventory)]
    cmdline += ["--limit", args.limit] if args.limit else []
    cmdline += ["--tags", args.tags] if args.tags else []
    for extra in args.extra_vars:
        cmdline += ["-e", f"@{_path_arg(extra[1:])}" if extra.startswith("@") else extra]
    cmdline += ["--check"] if args.check else []
    # ansible-playbook of this Python's environment, found first on PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    (reports / "runner").mkdir(parents=True, exist_ok=True)
    started = time.time()
    print(f"xpulab provision: run {run_id}, artifacts in {reports / 'runner' / 'artifacts' / run_id}", flush=True)
    host_keys = ansible_setting("HOST_KEY_CHECKING")
    with LiveView(tail=log_tail(cmdline[1], {"PATH": path, "ANSIBLE_HOST_KEY_CHECKING": host_keys})) as view:
        runner = ansible_runner.run(
            private_data_dir=str(reports / "runner"), project_dir=str(ROOT), ident=run_id,
            playbook=_path_arg(args.playbook), cmdline=shlex.join(cmdline),
            envvars={"PATH": path, "XPULAB_REPORT_DIR": str(reports), "XPULAB_HISTORY_ID": run_id,
                     # as plain ansible-playbook: ansible-runner would turn host key checking off
                     "ANSIBLE_HOST_KEY_CHECKING": host_keys},
            # and would cache facts in a file per run instead of ansible.cfg's fact_caching
            fact_cache_type="ansible.cfg",
            event_handler=view.handle, quiet=True, suppress_env_files=True, rotate_artifacts=args.keep,
        )
    print(f"\nSeconds per node per role\n{timing_table(view.events)}\n\nPLAY RECAP\n{recap(view.events)}")
    summary = reports / "fleet-summary.md"
    if summary.is_file() and summary.stat().st_mtime >= started:
        print(f"\n{summary.read_text(encoding='utf-8').rstrip()}")
    print(f"\n{runner.status}: exit {runner.rc}")
    return int(runner.rc)


def check(args: argparse.Namespace) -> int:
    command = [sys.executable, "-m", "pytest", "tests/postprovision", f"--hosts=ansible://{args.group}",
               f"--ansible-inventory={inventory_arg(args.inventory)}", *args.pytest_args]
    return subprocess.run(command, cwd=ROOT, check=False).returncode


def load_history(directory: Path) -> list[dict[str, Any]]:
    """The run records, newest first (file names sort by start time); unreadable files are skipped."""
    records = []
    for path in sorted(directory.glob("*.json"), reverse=True):
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            print(f"xpulab history: skipping unreadable {path}", file=sys.stderr)
    return records


def format_record(record: dict[str, Any]) -> str:
    when = str(record.get("started") or "?").replace("T", " ")
    inventory = ",".join(record.get("inventory") or []) or "-"
    extra = "".join(f" {key}={record[key]}" for key in ("limit",) if record.get(key))
    extra += " check" if record.get("check_mode") else ""
    lines = [f"{when}  {record.get('result', '?'):<7}  {record.get('playbook')} -i {inventory}{extra}  ({record.get('id')})"]
    for host, data in sorted((record.get("hosts") or {}).items()):
        fps = " ".join(f"{device}={value:.1f}" for device, value in sorted((data.get("fps") or {}).items()))
        lines.append(f"    {host}: changed={data.get('changed', 0)} failed={data.get('failed', 0)}"
                     f" unreachable={data.get('unreachable', 0)} smoke={data.get('smoke') or '-'}"
                     + (f" fps {fps}" if fps else ""))
    return "\n".join(lines)


def history(args: argparse.Namespace) -> int:
    records = load_history(history_dir())[: args.n]
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        print("\n".join(map(format_record, records)) if records else f"no runs recorded in {history_dir()}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="xpulab", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    prov = sub.add_parser("provision", help="run site.yml with a live view, then the per-role times and the fleet summary")
    prov.add_argument("-i", "--inventory", required=True)
    prov.add_argument("-l", "--limit")
    prov.add_argument("-t", "--tags")
    prov.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VAR=VAL|@FILE")
    prov.add_argument("--check", action="store_true", help="ansible-playbook --check")
    prov.add_argument("--playbook", default=str(ROOT / "site.yml"), help="default: site.yml of this checkout")
    prov.add_argument("--keep", type=int, default=20, help="runner artifact directories to keep (default 20)")
    prov.set_defaults(func=provision)
    chk = sub.add_parser("check", help="the post-provision checks (pytest tests/postprovision)")
    chk.add_argument("-i", "--inventory", required=True)
    chk.add_argument("--group", default="xpulab_nodes")
    chk.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    chk.set_defaults(func=check)
    hist = sub.add_parser("history", help="past runs, newest first")
    hist.add_argument("-n", type=int, default=10, help="how many runs (default 10)")
    hist.add_argument("--json", action="store_true", help="the records as a JSON array")
    hist.set_defaults(func=history)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # xpulab history | head: stop quietly, as other commands do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0

"""Run TorchCodec's own test suite on a node and sort the failures.

    xpulab_torchcodec_tests.py --tests-dir CHECKOUT/test --known-failures FILE.json
        --family cpu[,alchemist,...] --output REPORT.json
        [--timeout SECONDS] [--python PY] [--pytest-args ARG ...]

runs ``PY -m pytest test -p no:cacheprovider -q --junitxml=TMP -rN`` from the
checkout root (the parent of ``--tests-dir``, as ``python3 -m pytest test/``
in TorchCodec's instructions), plus ``--rootdir=ROOT`` and ``-o
junit_family=xunit1`` so test IDs are ``test/test_x.py::test_y`` whatever the
checkout's own pytest settings, and ``--continue-on-collection-errors`` so one
broken test module cannot hide the others. ``--pytest-args`` takes every
remaining argument and must come last.

The known-failures file is a JSON list of
``{"test": ID or fnmatch pattern, "families": ["any"] | ["cpu", "alchemist",
...], "reason": str, "source": str}``; an entry applies when its families
hold "any" or one of the node's ``--family`` values. Each failed or erroring
test is *known* when an applying entry matches it, else *new*; a matched test
that passed is *fixed* (reported, never fatal).

Exit codes: 0 no new failure (known failures allowed); 1 new failures, a
collection error (a new failure named after the module), no test collected,
a timeout (pytest's process group is interrupted, then killed) or an
interrupted run; 2 usage error, or pytest could not run at all (no JUnit XML).
One JSON report is written to ``--output`` in every case but usage errors.
Standard library only.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
DEFAULT_TIMEOUT_S = 3600.0
KILL_GRACE_S = 15.0
OUTPUT_TAIL_LINES = 60
MESSAGE_CHARS = 2000
KNOWN_KEYS = {"test", "families", "reason", "source"}
# Worst first: a test that failed and then errored in teardown counts as failed.
SEVERITY = {"failed": 3, "error": 2, "skipped": 1, "passed": 0}


class UsageError(Exception):
    """Bad arguments or inputs: exit code 2, no report."""


@dataclass(frozen=True)
class KnownFailure:
    test: str
    families: tuple[str, ...]
    reason: str
    source: str

    def applies_to(self, families: Sequence[str]) -> bool:
        return "any" in self.families or any(f in self.families for f in families)

    def matches(self, test_id: str) -> bool:
        # Exact first: parametrized IDs hold brackets, which fnmatch reads as classes.
        return test_id == self.test or fnmatch.fnmatchcase(test_id, self.test)


@dataclass
class Outcome:
    test: str
    status: str  # passed, failed, error or skipped
    message: str = ""


@dataclass(frozen=True)
class RunResult:
    returncode: int | None  # None: could not start
    timed_out: bool
    duration_s: float
    output: str


Runner = Callable[[Sequence[str], Path, float, Mapping[str, str]], RunResult]


@dataclass
class Report:
    status: str
    exit_code: int
    outcomes: list[Outcome] = field(default_factory=list)
    known: list[tuple[Outcome, KnownFailure]] = field(default_factory=list)
    new: list[Outcome] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    message: str = ""


# --------------------------------------------------------------------------
# Inputs


def parse_families(values: Sequence[str]) -> list[str]:
    families: list[str] = []
    for value in values:
        for item in value.split(","):
            name = item.strip().lower()
            if name and name not in families:
                families.append(name)
    if not families:
        raise UsageError("--family needs at least one name, e.g. cpu or cpu,alchemist")
    return families


def load_known_failures(path: Path) -> list[KnownFailure]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read known failures {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(data, list):
        raise UsageError(f"{path}: expected a JSON list of entries")
    entries: list[KnownFailure] = []
    for number, item in enumerate(data, start=1):
        where = f"{path}: entry {number}"
        if not isinstance(item, dict):
            raise UsageError(f"{where}: expected an object")
        if set(item) != KNOWN_KEYS:
            raise UsageError(f"{where}: keys must be exactly {sorted(KNOWN_KEYS)}, got {sorted(item)}")
        families = item["families"]
        if (not isinstance(families, list) or not families
                or not all(isinstance(f, str) and f.strip() for f in families)):
            raise UsageError(f"{where}: families must be a non-empty list of names")
        for key in ("test", "reason", "source"):
            if not isinstance(item[key], str) or not item[key].strip():
                raise UsageError(f"{where}: {key} must be a non-empty string")
        entries.append(KnownFailure(item["test"], tuple(f.strip().lower() for f in families),
                                    item["reason"], item["source"]))
    return entries


# --------------------------------------------------------------------------
# Running pytest


def pytest_command(python: str, tests_dir: Path, junit: Path, extra: Sequence[str]) -> list[str]:
    return [python, "-m", "pytest", tests_dir.name, "-p", "no:cacheprovider", "-q", f"--junitxml={junit}",
            "-rN", f"--rootdir={tests_dir.parent}", "-o", "junit_family=xunit1",
            "--continue-on-collection-errors", *extra]


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_process(argv: Sequence[str], cwd: Path, timeout: float, env: Mapping[str, str]) -> RunResult:
    """Run ``argv`` in its own process group; on timeout interrupt the group
    (pytest then still writes its JUnit XML), then kill it."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as log:
        try:
            # SIGINT back to its default: a runner started with it ignored
            # (nohup, some CI shells) would pass that on, and Python would then
            # not turn the interrupt into KeyboardInterrupt for pytest.
            proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_default_sigint)
        except OSError as exc:
            return RunResult(None, False, time.monotonic() - start, f"cannot run {argv[0]}: {exc}")
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _signal_group(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
            _signal_group(proc.pid, signal.SIGKILL)  # whatever the tests left behind
        log.seek(0)
        output = log.read().decode("utf-8", errors="replace")
    return RunResult(proc.returncode, timed_out, time.monotonic() - start, output)


# --------------------------------------------------------------------------
# JUnit XML


def _test_id(case: ET.Element, root: Path) -> str:
    name = case.get("name", "")
    classname = case.get("classname", "")
    file = case.get("file")
    if not classname:  # a collection error: name is the module, file its path
        return file or name.replace(".", "/") + ".py"
    parts = classname.split(".")
    if file is None:  # no xunit1 attributes: find the longest module path that exists
        cut = next((i for i in range(len(parts), 0, -1) if (root / ("/".join(parts[:i]) + ".py")).is_file()),
                   len(parts))
        file = "/".join(parts[:cut]) + ".py"
    module_parts = file[:-3].replace("/", ".").split(".") if file.endswith(".py") else []
    classes = parts[len(module_parts):] if parts[:len(module_parts)] == module_parts else []
    return "::".join([file, *classes, name])


def _message(element: ET.Element) -> str:
    text = (element.get("message") or "").strip()
    body = (element.text or "").strip()
    if text == "collection failure":  # the useful line is the traceback's last "E   ..."
        errors = [line[1:].strip() for line in body.splitlines() if line.startswith("E ")]
        text = f"{text}: {errors[-1]}" if errors else text
    if body and body not in text:
        text = f"{text}\n{body}" if text else body
    return text[:MESSAGE_CHARS]


def parse_junit(path: Path, root: Path) -> list[Outcome]:
    """One outcome per test ID, in file order; the worst status wins."""
    tree = ET.parse(path)
    outcomes: dict[str, Outcome] = {}
    for case in tree.iter("testcase"):
        if not case.get("name"):  # the test running when pytest was interrupted
            continue
        test = _test_id(case, root)
        outcome = Outcome(test, "passed")
        for tag, status in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            element = case.find(tag)
            if element is not None:
                message = _message(element) if status != "skipped" else (element.get("message") or "").strip()
                if status == "skipped" and element.get("type") == "pytest.xfail":
                    message = f"xfail: {message}" if message else "xfail"
                outcome = Outcome(test, status, message)
                break
        seen = outcomes.get(test)
        if seen is None or SEVERITY[outcome.status] > SEVERITY[seen.status]:
            outcomes[test] = outcome
    return list(outcomes.values())


# --------------------------------------------------------------------------
# Classification and the report


def classify(outcomes: Sequence[Outcome], known: Sequence[KnownFailure], families: Sequence[str]) -> Report:
    applying = [k for k in known if k.applies_to(families)]
    report = Report(status="passed", exit_code=0, outcomes=list(outcomes))
    for outcome in outcomes:
        entry = next((k for k in applying if k.matches(outcome.test)), None)
        if outcome.status in ("failed", "error"):
            if entry is None:
                report.new.append(outcome)
            else:
                report.known.append((outcome, entry))
        elif outcome.status == "passed" and entry is not None:
            report.fixed.append(outcome.test)
    if report.new:
        report.status, report.exit_code = "new-failures", 1
    return report


def decide(report: Report, run: RunResult, tests_dir: Path) -> None:
    """Set status, exit code and message from how pytest ended."""
    failures = report.new or report.known
    if run.timed_out:
        report.status, report.exit_code = "timeout", 1
        report.message = f"pytest did not finish in time and was stopped ({len(report.outcomes)} results kept)"
    elif run.returncode not in (0, 1, 2, 5):
        report.status, report.exit_code = "error", 2
        report.message = f"pytest could not run the suite (exit code {run.returncode})"
    elif not report.outcomes:
        report.status, report.exit_code = "no-tests", 1
        report.message = f"no tests were collected in {tests_dir}: this is not a pass"
    elif run.returncode == 2:
        report.status, report.exit_code = "interrupted", 1
        report.message = "pytest was interrupted (exit code 2): the results are incomplete"
    elif run.returncode == 1 and not failures:
        report.status, report.exit_code = "error", 1
        report.message = "pytest reported a failure (exit code 1) that the JUnit XML does not show"
    elif report.new:
        report.message = f"{len(report.new)} new failure(s)"


def report_json(report: Report, *, tests_dir: Path, python: str, families: Sequence[str],
                run: RunResult, command: Sequence[str]) -> dict[str, Any]:
    status_count = {s: sum(1 for o in report.outcomes if o.status == s) for s in SEVERITY}
    lines = run.output.splitlines()
    return {
        "schema_version": SCHEMA_VERSION,
        "status": report.status,
        "exit_code": report.exit_code,
        "message": report.message,
        "tests_dir": str(tests_dir),
        "python": python,
        "families": list(families),
        "counts": {
            "passed": status_count["passed"], "failed": status_count["failed"],
            "skipped": status_count["skipped"], "errors": status_count["error"],
            "known": len(report.known), "new": len(report.new), "fixed": len(report.fixed),
            "total": len(report.outcomes),
        },
        "new_failures": [o.test for o in report.new],
        "known_failures": [{"test": o.test, "reason": k.reason, "source": k.source} for o, k in report.known],
        "fixed": list(report.fixed),
        "skipped": [{"test": o.test, "reason": o.message} for o in report.outcomes if o.status == "skipped"],
        "failure_messages": {o.test: o.message for o in report.outcomes if o.status in ("failed", "error")},
        "duration_s": round(run.duration_s, 3),
        "pytest_exit_code": run.returncode,
        "timed_out": run.timed_out,
        "command": list(command),
        "output_tail": lines[-OUTPUT_TAIL_LINES:],
    }


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def summary(data: Mapping[str, Any]) -> str:
    c = data["counts"]
    headline = (f"TorchCodec tests in {data['tests_dir']} (families {','.join(data['families'])}): "
                f"{c['passed']} passed, {c['failed']} failed, {c['errors']} errors, {c['skipped']} skipped; "
                f"known {c['known']}, new {c['new']}, fixed {c['fixed']} in {data['duration_s']:.1f} s "
                f"-> {data['status'].upper()}")
    lines = [headline]
    if data["message"]:
        lines.append(data["message"])
    for test in data["new_failures"]:
        first = data["failure_messages"].get(test, "").splitlines()
        lines.append(f"  NEW   {test}" + (f": {first[0]}" if first else ""))
    for item in data["known_failures"]:
        lines.append(f"  known {item['test']} ({item['reason']})")
    for test in data["fixed"]:
        lines.append(f"  FIXED {test} (listed as a known failure but passed: remove the entry)")
    if data["status"] in ("error", "no-tests", "timeout", "interrupted") and data["output_tail"]:
        lines += ["pytest output (tail):", *("  " + line for line in data["output_tail"][-20:])]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# CLI


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", maxsplit=1)[0])
    parser.add_argument("--tests-dir", type=Path, required=True, help="the checkout's test directory")
    parser.add_argument("--known-failures", type=Path, required=True, help="JSON list of known failures")
    parser.add_argument("--family", action="append", required=True,
                        help="this node's GPU families, comma-separated (cpu for a node without GPUs)")
    parser.add_argument("--output", type=Path, required=True, help="JSON report to write")
    parser.add_argument("--json-stdout", action="store_true",
                        help="also print the report as one line of JSON on stdout (the summary goes to stderr)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"seconds before pytest is stopped (default {DEFAULT_TIMEOUT_S:.0f})")
    parser.add_argument("--python", default=sys.executable, help="Python with pytest and TorchCodec")
    parser.add_argument("--pytest-args", nargs=argparse.REMAINDER, default=[],
                        help="further pytest arguments (all the rest of the command line)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, runner: Runner = run_process) -> int:
    args = parse_args(argv)
    try:
        families = parse_families(args.family)
        tests_dir = args.tests_dir.resolve()
        if not tests_dir.is_dir():
            raise UsageError(f"--tests-dir {args.tests_dir} is not a directory")
        if args.timeout <= 0:
            raise UsageError("--timeout must be positive")
        known = load_known_failures(args.known_failures)
    except UsageError as exc:
        print(f"xpulab_torchcodec_tests: {exc}", file=sys.stderr)
        return 2
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    with tempfile.TemporaryDirectory(prefix="xpulab-torchcodec-tests.") as tmp:
        junit = Path(tmp) / "junit.xml"
        command = pytest_command(args.python, tests_dir, junit, args.pytest_args)
        run = runner(command, tests_dir.parent, args.timeout, env)
        try:
            outcomes = parse_junit(junit, tests_dir.parent) if junit.is_file() else None
        except ET.ParseError as exc:
            outcomes, run = None, RunResult(run.returncode, run.timed_out, run.duration_s,
                                            f"{run.output}\nunreadable JUnit XML: {exc}")
    if outcomes is None and not run.timed_out:
        report = Report(status="error", exit_code=2,
                        message=f"pytest could not run (exit code {run.returncode}, no JUnit XML)")
    else:
        report = classify(outcomes or [], known, families)
        decide(report, run, tests_dir)
    data = report_json(report, tests_dir=tests_dir, python=args.python, families=families, run=run,
                       command=command)
    write_json(args.output, data)
    print(summary(data), file=sys.stderr if args.json_stdout else sys.stdout)
    if args.json_stdout:
        print(json.dumps(data, sort_keys=True))
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())

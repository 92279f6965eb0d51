"""Unit tests for roles/torchcodec/files/xpulab_torchcodec_tests.py: synthetic JUnit XML,
a fake pytest runner, and real pytest runs on a tiny suite in tmp_path."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "roles" / "torchcodec" / "files" / "xpulab_torchcodec_tests.py"
sys.path.insert(0, str(SCRIPT.parent))
import xpulab_torchcodec_tests as runner  # type: ignore[import-not-found]  # noqa: E402

# What pytest 9 writes with -o junit_family=xunit1 --continue-on-collection-errors
# (trimmed): a collection error, a class, parameters with brackets, an xfail,
# a setup error and a failure followed by a teardown error.
JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="pytest" errors="2" failures="2" skipped="2" tests="10">
<testcase classname="" name="test.test_broken" file="test/test_broken.py" time="0.000">
<error message="collection failure">ImportError while importing test module 'test/test_broken.py'.
Traceback:
test/test_broken.py:1: in &lt;module&gt;
    import nonexistent_module_xyz
E   ModuleNotFoundError: No module named 'nonexistent_module_xyz'</error></testcase>
<testcase classname="test.test_a" name="test_pass" file="test/test_a.py" line="1" time="0.001"/>
<testcase classname="test.test_a" name="test_fail" file="test/test_a.py" line="2" time="0.001">
<failure message="AssertionError: boom&#10;assert 1 == 2">E   AssertionError: boom</failure></testcase>
<testcase classname="test.test_a" name="test_skip" file="test/test_a.py" line="3" time="0.000">
<skipped type="pytest.skip" message="no XPU device">test/test_a.py:4: no XPU device</skipped></testcase>
<testcase classname="test.test_a" name="test_xfail" file="test/test_a.py" line="5" time="0.000">
<skipped type="pytest.xfail" message="known xfail"/></testcase>
<testcase classname="test.test_a" name="test_param[a[b]" file="test/test_a.py" line="7" time="0.000"/>
<testcase classname="test.test_a" name="test_param[c]" file="test/test_a.py" line="7" time="0.000"/>
<testcase classname="test.sub.test_c.TestK.Inner" name="test_m" file="test/sub/test_c.py" line="10" time="0"/>
<testcase classname="test.test_a" name="test_err" file="test/test_a.py" line="14" time="0.000">
<error message="failed on setup with &quot;RuntimeError: fixture broke&quot;">E RuntimeError</error></testcase>
<testcase classname="test.test_a" name="test_tdown" file="test/test_a.py" line="19" time="0.000">
<failure message="assert 0">E   assert 0</failure></testcase>
<testcase classname="test.test_a" name="test_tdown" file="test/test_a.py" line="19" time="0.000">
<error message="failed on teardown with &quot;RuntimeError: teardown broke&quot;">E x</error></testcase>
</testsuite></testsuites>
"""

ALL_IDS = [
    "test/test_broken.py",
    "test/test_a.py::test_pass",
    "test/test_a.py::test_fail",
    "test/test_a.py::test_skip",
    "test/test_a.py::test_xfail",
    "test/test_a.py::test_param[a[b]",
    "test/test_a.py::test_param[c]",
    "test/sub/test_c.py::TestK::Inner::test_m",
    "test/test_a.py::test_err",
    "test/test_a.py::test_tdown",
]


def known(test: str, families: Sequence[str] = ("any",), reason: str = "r", source: str = "s") -> dict[str, Any]:
    return {"test": test, "families": list(families), "reason": reason, "source": source}


@pytest.fixture
def junit(tmp_path: Path) -> Path:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    return path


# --------------------------------------------------------------------------
# JUnit XML


def test_junit_ids_and_outcomes(junit: Path, tmp_path: Path) -> None:
    outcomes = {o.test: o for o in runner.parse_junit(junit, tmp_path)}
    assert list(outcomes) == ALL_IDS
    status = {t: o.status for t, o in outcomes.items()}
    assert status["test/test_broken.py"] == "error"
    assert status["test/test_a.py::test_fail"] == "failed"
    assert status["test/test_a.py::test_tdown"] == "failed"  # failure + teardown error: failed once
    assert status["test/test_a.py::test_err"] == "error"
    assert [t for t, s in status.items() if s == "passed"] == [
        "test/test_a.py::test_pass", "test/test_a.py::test_param[a[b]", "test/test_a.py::test_param[c]",
        "test/sub/test_c.py::TestK::Inner::test_m"]
    assert outcomes["test/test_a.py::test_skip"].message == "no XPU device"
    assert outcomes["test/test_a.py::test_xfail"].message == "xfail: known xfail"
    assert outcomes["test/test_broken.py"].message.startswith(
        "collection failure: ModuleNotFoundError: No module named 'nonexistent_module_xyz'\nImportError while")
    assert outcomes["test/test_a.py::test_fail"].message == (
        "AssertionError: boom\nassert 1 == 2\nE   AssertionError: boom")


def test_junit_without_file_attributes_finds_the_module(tmp_path: Path) -> None:
    """xunit2 has no file attribute: the longest dotted prefix that is a file is the module."""
    (tmp_path / "test" / "sub").mkdir(parents=True)
    (tmp_path / "test" / "sub" / "test_c.py").write_text("")
    xml = tmp_path / "j.xml"
    xml.write_text('<testsuite><testcase classname="test.sub.test_c.TestK" name="test_m"/>'
                   '<testcase classname="test.test_gone" name="test_x"/></testsuite>')
    assert [o.test for o in runner.parse_junit(xml, tmp_path)] == [
        "test/sub/test_c.py::TestK::test_m", "test/test_gone.py::test_x"]


# --------------------------------------------------------------------------
# Known failures and classification


def entries(*items: dict[str, Any]) -> list[Any]:
    return [runner.KnownFailure(i["test"], tuple(i["families"]), i["reason"], i["source"]) for i in items]


def test_classify_known_new_fixed(junit: Path, tmp_path: Path) -> None:
    outcomes = runner.parse_junit(junit, tmp_path)
    listed = entries(
        known("test/test_a.py::test_fail", ["any"], "upstream bug", "https://example.invalid/1"),
        known("test/test_a.py::test_err", ["battlemage"]),          # not this node's family
        known("test/test_a.py::test_tdown", ["cpu", "alchemist"]),
        known("test/test_a.py::test_param[a[b]", ["alchemist"]),     # exact match despite the brackets
        known("test/sub/*::test_m", ["any"]),                         # a pattern, and it passed
        known("test/test_a.py::test_skip", ["any"]),                  # skipped: neither known nor fixed
    )
    report = runner.classify(outcomes, listed, ["cpu", "alchemist"])
    assert [o.test for o in report.new] == ["test/test_broken.py", "test/test_a.py::test_err"]
    assert [(o.test, k.reason) for o, k in report.known] == [
        ("test/test_a.py::test_fail", "upstream bug"), ("test/test_a.py::test_tdown", "r")]
    assert report.fixed == ["test/test_a.py::test_param[a[b]", "test/sub/test_c.py::TestK::Inner::test_m"]
    assert (report.status, report.exit_code) == ("new-failures", 1)
    assert [o.test for o in runner.classify(outcomes, listed, ["battlemage"]).new] == [
        "test/test_broken.py", "test/test_a.py::test_tdown"]


def test_collection_error_can_be_a_known_failure(junit: Path, tmp_path: Path) -> None:
    outcomes = runner.parse_junit(junit, tmp_path)
    listed = entries(known("test/test_broken.py"), known("test/test_a.py::test_*"))
    report = runner.classify(outcomes, listed, ["cpu"])
    assert report.new == [] and report.exit_code == 0 and len(report.known) == 4


@pytest.mark.parametrize(("content", "error"), [
    ("{", "not JSON"),
    ('{"test": "x"}', "expected a JSON list"),
    ('["x"]', "entry 1: expected an object"),
    ('[{"test": "x", "families": ["any"], "reason": "r"}]', "keys must be exactly"),
    ('[{"test": "x", "families": ["any"], "reason": "r", "source": "s", "until": 1}]', "keys must be exactly"),
    ('[{"test": "x", "families": [], "reason": "r", "source": "s"}]', "families must be a non-empty list"),
    ('[{"test": "x", "families": "any", "reason": "r", "source": "s"}]', "families must be a non-empty list"),
    ('[{"test": "", "families": ["any"], "reason": "r", "source": "s"}]', "test must be a non-empty string"),
    ('[{"test": "x", "families": ["any"], "reason": 3, "source": "s"}]', "reason must be a non-empty string"),
])
def test_bad_known_failures_files(tmp_path: Path, content: str, error: str) -> None:
    path = tmp_path / "kf.json"
    path.write_text(content)
    with pytest.raises(runner.UsageError, match=error):
        runner.load_known_failures(path)


def test_known_failure_families_are_case_insensitive(tmp_path: Path) -> None:
    path = tmp_path / "kf.json"
    path.write_text(json.dumps([known("t", [" Alchemist "])]))
    (entry,) = runner.load_known_failures(path)
    assert entry.families == ("alchemist",)
    assert runner.parse_families(["CPU, alchemist", "cpu", ""]) == ["cpu", "alchemist"]
    with pytest.raises(runner.UsageError):
        runner.parse_families([" , "])


# --------------------------------------------------------------------------
# The CLI with a fake pytest runner


class FakeRunner:
    """Stands in for run_process: writes ``xml`` to the --junitxml path and records the call."""

    def __init__(self, xml: str | None, returncode: int | None = 1, timed_out: bool = False,
                 output: str = "fake pytest output") -> None:
        self.xml, self.returncode, self.timed_out, self.output = xml, returncode, timed_out, output
        self.calls: list[tuple[list[str], Path, float, dict[str, str]]] = []

    def __call__(self, argv: Sequence[str], cwd: Path, timeout: float, env: Mapping[str, str]) -> Any:
        self.calls.append((list(argv), cwd, timeout, dict(env)))
        if self.xml is not None:
            junit = next(a for a in argv if a.startswith("--junitxml=")).split("=", 1)[1]
            Path(junit).write_text(self.xml)
        return runner.RunResult(self.returncode, self.timed_out, 1.25, self.output)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    (tmp_path / "co" / "test").mkdir(parents=True)
    return tmp_path / "co"


def cli(tmp_path: Path, checkout: Path, fake: FakeRunner, listed: Sequence[dict[str, Any]] = (),
        *extra: str, family: str = "cpu") -> tuple[int, dict[str, Any]]:
    kf = tmp_path / "kf.json"
    kf.write_text(json.dumps(list(listed)))
    out = tmp_path / "reports" / "tc.json"
    code = runner.main(["--tests-dir", str(checkout / "test"), "--known-failures", str(kf), "--family", family,
                        "--output", str(out), *extra], runner=fake)
    return code, json.loads(out.read_text()) if out.exists() else {}


def test_cli_report_with_only_known_failures(tmp_path: Path, checkout: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeRunner(JUNIT)
    listed = [known("test/test_broken.py", ["cpu"], "needs a module", "xpulab#12"),
              known("test/test_a.py::test_[fet]*", ["any"], "upstream", "pytorch/torchcodec#1"),
              known("test/test_a.py::test_pass", ["cpu"], "was flaky", "xpulab#7")]
    code, report = cli(tmp_path, checkout, fake, listed, "--timeout", "99", "--python", "/x/python",
                       "--pytest-args", "-k", "not slow", "-x", family="cpu,alchemist")
    assert code == 0
    argv, cwd, timeout, env = fake.calls[0]
    assert argv[:4] == ["/x/python", "-m", "pytest", "test"]
    assert {"-p", "no:cacheprovider", "-q", "-rN", f"--rootdir={checkout}", "junit_family=xunit1",
            "--continue-on-collection-errors"} <= set(argv)
    assert argv[-3:] == ["-k", "not slow", "-x"]
    assert cwd == checkout and timeout == 99 and env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert report["status"] == "passed" and report["exit_code"] == 0
    assert report["counts"] == {"passed": 4, "failed": 2, "skipped": 2, "errors": 2, "known": 4, "new": 0,
                                "fixed": 1, "total": 10}
    assert report["new_failures"] == [] and report["fixed"] == ["test/test_a.py::test_pass"]
    assert report["known_failures"][0] == {"test": "test/test_broken.py", "reason": "needs a module",
                                           "source": "xpulab#12"}
    assert report["skipped"] == [{"test": "test/test_a.py::test_skip", "reason": "no XPU device"},
                                 {"test": "test/test_a.py::test_xfail", "reason": "xfail: known xfail"}]
    assert (report["schema_version"], report["tests_dir"], report["python"], report["families"]) == (
        1, str(checkout / "test"), "/x/python", ["cpu", "alchemist"])
    assert (report["duration_s"], report["pytest_exit_code"], report["timed_out"]) == (1.25, 1, False)
    out = capsys.readouterr().out
    assert "4 passed, 2 failed, 2 errors, 2 skipped; known 4, new 0, fixed 1" in out and "-> PASSED" in out
    assert "FIXED test/test_a.py::test_pass" in out


def test_cli_new_failures_exit_1_and_are_named(tmp_path: Path, checkout: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, report = cli(tmp_path, checkout, FakeRunner(JUNIT), [known("test/test_a.py::test_fail")])
    assert code == 1 and report["status"] == "new-failures"
    assert report["new_failures"] == ["test/test_broken.py", "test/test_a.py::test_err", "test/test_a.py::test_tdown"]
    assert "No module named 'nonexistent_module_xyz'" in report["failure_messages"]["test/test_broken.py"]
    out = capsys.readouterr().out
    assert "NEW   test/test_broken.py: collection failure: ModuleNotFoundError" in out
    assert "known test/test_a.py::test_fail (r)" in out


@pytest.mark.parametrize(("xml", "rc", "timed_out", "code", "status", "says"), [
    (None, 1, False, 2, "error", "pytest could not run (exit code 1, no JUnit XML)"),
    (None, None, False, 2, "error", "pytest could not run (exit code None, no JUnit XML)"),
    ("<testsuite", 1, False, 2, "error", "pytest could not run"),
    ('<testsuite tests="0"/>', 4, False, 2, "error", "pytest could not run the suite (exit code 4)"),
    ('<testsuite tests="0"/>', 5, False, 1, "no-tests", "no tests were collected"),
    ('<testsuite tests="0"/>', 0, False, 1, "no-tests", "this is not a pass"),
    (None, -9, True, 1, "timeout", "did not finish in time and was stopped (0 results kept)"),
    (JUNIT, 2, True, 1, "timeout", "(10 results kept)"),
    (JUNIT, 2, False, 1, "interrupted", "results are incomplete"),
    ('<testsuite><testcase classname="test.test_a" name="t" file="test/test_a.py"/></testsuite>', 1, False, 1,
     "error", "that the JUnit XML does not show"),
])
def test_cli_when_pytest_does_not_end_well(tmp_path: Path, checkout: Path, capsys: pytest.CaptureFixture[str],
                                           xml: str | None, rc: int | None, timed_out: bool, code: int,
                                           status: str, says: str) -> None:
    listed = [known("test/*")]  # even with every failure known these are not passes
    got, report = cli(tmp_path, checkout, FakeRunner(xml, rc, timed_out, "line 1\nNo module named pytest"), listed)
    assert (got, report["status"], report["exit_code"]) == (code, status, code)
    assert says in report["message"] and report["timed_out"] is timed_out
    assert "No module named pytest" in report["output_tail"]
    out = capsys.readouterr().out
    assert says in out and "No module named pytest" in out


@pytest.mark.parametrize(("args", "error"), [
    (["--tests-dir", "{tmp}/nowhere"], "is not a directory"),
    (["--known-failures", "{tmp}/missing.json"], "cannot read known failures"),
    (["--family", ","], "--family needs at least one name"),
    (["--timeout", "0"], "--timeout must be positive"),
])
def test_usage_errors_exit_2_without_a_report(tmp_path: Path, checkout: Path, capsys: pytest.CaptureFixture[str],
                                              args: list[str], error: str) -> None:
    kf = tmp_path / "kf.json"
    kf.write_text("[]")
    base = {"--tests-dir": str(checkout / "test"), "--known-failures": str(kf), "--family": "cpu",
            "--output": str(tmp_path / "r.json")}
    base[args[0]] = args[1].format(tmp=tmp_path)
    fake = FakeRunner(JUNIT)
    assert runner.main([x for kv in base.items() for x in kv], runner=fake) == 2
    assert error in capsys.readouterr().err
    assert fake.calls == [] and not (tmp_path / "r.json").exists()


def test_missing_required_option_is_exit_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        runner.main(["--tests-dir", str(tmp_path)], runner=FakeRunner(JUNIT))
    assert caught.value.code == 2


def test_runner_is_standard_library_only() -> None:
    tree = ast.parse(SCRIPT.read_text())
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {str(n.module).split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert modules - {"__future__"} <= set(sys.stdlib_module_names)


# --------------------------------------------------------------------------
# Real processes


def test_timeout_kills_the_whole_process_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A "python" that ignores SIGINT and leaves a grandchild behind."""
    pidfile = tmp_path / "grandchild.pid"
    fake_python = tmp_path / "python"
    fake_python.write_text(f"#!/bin/sh\ntrap '' INT\nsleep 300 &\necho $! > {pidfile}\nsleep 300\n")
    fake_python.chmod(0o755)
    monkeypatch.setattr(runner, "KILL_GRACE_S", 0.5)
    start = time.monotonic()
    result = runner.run_process([str(fake_python)], tmp_path, 1.0, dict(os.environ))
    assert result.timed_out and time.monotonic() - start < 10
    grandchild = int(pidfile.read_text())
    for _ in range(50):  # killed, then reaped by init
        if not Path(f"/proc/{grandchild}").exists() or "State:\tZ" in Path(f"/proc/{grandchild}/status").read_text():
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"grandchild {grandchild} survived the timeout")


def test_a_missing_python_cannot_run(tmp_path: Path) -> None:
    result = runner.run_process([str(tmp_path / "no-python"), "-m", "pytest"], tmp_path, 5, dict(os.environ))
    assert result.returncode is None and "cannot run" in result.output


TINY_SUITE = {
    "test_ok.py": """
        import os

        def test_passing():
            assert os.sep == "/"
        """,
    "test_bad.py": """
        def test_failing():
            assert 2 + 2 == 5, "tiny suite: failing on purpose"
        """,
    "test_skip.py": """
        import pytest

        @pytest.mark.skip(reason="no XPU device")
        def test_skipped():
            pass
        """,
}


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    test_dir = tmp_path / "checkout" / "test"
    test_dir.mkdir(parents=True)
    for name, body in TINY_SUITE.items():
        (test_dir / name).write_text(textwrap.dedent(body))
    return test_dir


def run_cli(tmp_path: Path, tests_dir: Path, listed: Sequence[dict[str, Any]], *extra: str,
            python: str = sys.executable) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    kf = tmp_path / "known.json"
    kf.write_text(json.dumps(list(listed)))
    out = tmp_path / "report.json"
    out.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, str(SCRIPT), "--tests-dir", str(tests_dir), "--known-failures", str(kf),
                           "--family", "cpu", "--output", str(out), "--python", python, *extra],
                          capture_output=True, text=True, check=False, timeout=120)
    return done, (json.loads(out.read_text()) if out.exists() else {})


def test_real_pytest_run(tmp_path: Path, tiny: Path) -> None:
    done, report = run_cli(tmp_path, tiny, [])
    assert done.returncode == 1, done.stdout + done.stderr
    assert report["new_failures"] == ["test/test_bad.py::test_failing"]
    assert report["counts"] == {"passed": 1, "failed": 1, "skipped": 1, "errors": 0, "known": 0, "new": 1,
                                "fixed": 0, "total": 3}
    assert report["skipped"] == [{"test": "test/test_skip.py::test_skipped", "reason": "no XPU device"}]
    assert "tiny suite: failing on purpose" in report["failure_messages"]["test/test_bad.py::test_failing"]
    assert report["pytest_exit_code"] == 1 and report["timed_out"] is False
    assert "NEW   test/test_bad.py::test_failing" in done.stdout
    assert not list(tiny.parent.rglob("__pycache__")) and not (tiny.parent / ".pytest_cache").exists()

    listed = [known("test/test_bad.py::test_failing", ["cpu"], "on purpose", "tiny suite"),
              known("test/test_ok.py::*", ["battlemage"], "only there", "tiny suite")]
    done, report = run_cli(tmp_path, tiny, listed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert report["status"] == "passed" and report["fixed"] == []
    assert report["known_failures"] == [{"test": "test/test_bad.py::test_failing", "reason": "on purpose",
                                         "source": "tiny suite"}]



def test_real_pytest_run_with_pytest_args(tmp_path: Path, tiny: Path) -> None:
    done, report = run_cli(tmp_path, tiny, [], "--pytest-args", "-k", "passing or skipped")
    assert done.returncode == 0, done.stdout + done.stderr
    assert report["counts"]["total"] == 2 and report["counts"]["passed"] == 1
    done, report = run_cli(tmp_path, tiny, [], "--pytest-args", "-k", "nothing_matches_this")
    assert done.returncode == 1 and report["status"] == "no-tests" and report["pytest_exit_code"] == 5
    assert "no tests were collected" in done.stdout


def test_real_collection_error_and_empty_dir(tmp_path: Path, tiny: Path) -> None:
    (tiny / "test_import.py").write_text("import no_such_module_for_xpulab\n\ndef test_x():\n    pass\n")
    done, report = run_cli(tmp_path, tiny, [known("test/test_bad.py::*")])
    assert done.returncode == 1
    assert report["new_failures"] == ["test/test_import.py"]
    assert report["counts"]["passed"] == 1  # the other modules still ran
    assert "No module named 'no_such_module_for_xpulab'" in done.stdout
    empty = tmp_path / "empty" / "test"
    empty.mkdir(parents=True)
    done, report = run_cli(tmp_path, empty, [])
    assert done.returncode == 1 and report["status"] == "no-tests"


def test_real_python_without_pytest_is_exit_2(tmp_path: Path, tiny: Path) -> None:
    no_site = tmp_path / "python-no-site"
    no_site.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')  # no site-packages: no pytest
    no_site.chmod(0o755)
    done, report = run_cli(tmp_path, tiny, [], python=str(no_site))
    assert done.returncode == 2 and report["status"] == "error"
    assert "No module named pytest" in done.stdout
    done, report = run_cli(tmp_path, tiny, [], python=str(tmp_path / "absent"))
    assert done.returncode == 2 and "cannot run" in done.stdout


def test_real_timeout_keeps_the_finished_results(tmp_path: Path, tiny: Path) -> None:
    (tiny / "test_zz_slow.py").write_text("import time\n\ndef test_slow():\n    time.sleep(300)\n")
    start = time.monotonic()
    # 15 s leaves the three quick tests room on a loaded machine; the slow one
    # sleeps far longer than the runner's timeout and is interrupted.
    done, report = run_cli(tmp_path, tiny, [], "--timeout", "15")
    assert time.monotonic() - start < 100
    assert done.returncode == 1 and report["status"] == "timeout" and report["timed_out"] is True
    # pytest stops on SIGINT and still writes its JUnit XML: what ran before is kept.
    assert report["counts"]["passed"] == 1 and report["new_failures"] == ["test/test_bad.py::test_failing"]
    assert report["counts"]["total"] == 3  # the interrupted test has no result
    assert "test_zz_slow.py:4: KeyboardInterrupt" in done.stdout  # the output tail names it


def test_json_stdout_prints_the_report_as_written_and_the_summary_on_stderr(
        tmp_path: Path, checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json-stdout (what the torchcodec role passes): the report comes back on stdout, one JSON
    line equal to the file, so the role needs no second call to read the file."""
    code, report = cli(tmp_path, checkout, FakeRunner(JUNIT), [known("test/test_a.py::test_fail")], "--json-stdout")
    captured = capsys.readouterr()
    assert code == 1 and json.loads(captured.out) == report
    assert len(captured.out.splitlines()) == 1
    assert "NEW   test/test_broken.py" in captured.err

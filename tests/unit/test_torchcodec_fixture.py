"""Unit tests for the TorchCodec stand-in: tests/fixtures/build-torchcodec-fixture.py (the
published git repository) and tests/fixtures/torchcodec/setup.py (the build contract,
with a fake torch and a fake pkg-config; the real compile runs in containers, see the
fixture's README)."""

from __future__ import annotations

import ast
import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import ModuleType

import pytest
import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tests" / "fixtures" / "build-torchcodec-fixture.py"
FIXTURE = ROOT / "tests" / "fixtures" / "torchcodec"
MAIN = "refs/heads/main"
PR = "refs/pull/558/head"
TAG = "refs/tags/v0.17.0"

# The published commits of tests/fixtures/torchcodec. They change whenever the
# fixture changes (on purpose: update them, and the README's table, then);
# they must never change with the machine, the user's git configuration or
# the date.
FIXTURE_MAIN_SHA = "0575e76887abbf229b95561b8b9063530ea024bd"
FIXTURE_PR_SHA = "c28bcf4e235ac7f78349e39f06f043424097d57e"
FIXTURE_TAG_SHA = "5fdfe7f29bb85af0b16d9150a223189168115174"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


tool = _load("build_torchcodec_fixture", TOOL)
fixture_setup = _load("xpulab_torchcodec_fixture_setup", FIXTURE / "setup.py")


def git(*args: str, cwd: Path | None = None) -> str:
    run = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=tool._git_env(), check=False)
    assert run.returncode == 0, f"git {' '.join(args)}: {run.stderr}"
    return run.stdout.strip()


def show(dest: Path, ref: str, path: str) -> str:
    return git("--git-dir", str(dest), "show", f"{ref}:{path}")


def tree_names(dest: Path, ref: str) -> list[str]:
    return git("--git-dir", str(dest), "ls-tree", "-r", "--name-only", ref).splitlines()


def publish(source: Path, dest: Path, *options: str) -> dict[str, object]:
    """Run the tool's CLI; return its JSON."""
    out = subprocess.run([sys.executable, str(TOOL), "--source", str(source), "--dest", str(dest), *options],
                         check=True, capture_output=True, text=True)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def run_suite(work: Path, commit: str) -> subprocess.CompletedProcess[str]:
    """Check that the checkout is at `commit`, then run its test/ with pytest."""
    assert git("rev-parse", "HEAD", cwd=work) == commit
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test/"],
                          cwd=work, capture_output=True, text=True, check=False)


def refs_of(result: Mapping[str, object]) -> dict[str, str]:
    refs = result["refs"]
    assert isinstance(refs, dict)
    return {str(k): str(v) for k, v in refs.items()}


# --------------------------------------------------------------------------
# A small synthetic fixture, with golden commit IDs


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """A fixture tree outside any git work tree: every file is taken."""
    src = tmp_path / "small"
    (src / "test").mkdir(parents=True)
    (src / "README.md").write_text("Small fixture. The markers look like `# BEGIN PR-558`.\n")
    (src / "setup.py").write_text(
        "FLAGS = []\n"
        "# BEGIN PR-558\n"
        "FLAGS.append('xpu')\n"
        "# END PR-558\n"
        "print(FLAGS)\n")
    (src / "xpu.c").write_text("/*\n * xpulab-fixture: pr-558-only\n */\nint xpu;\n")
    (src / "test" / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    (src / "data.bin").write_bytes(bytes(range(256)))
    return src


SMALL_MAIN_SHA = "fcc51b3f5acdb8bfd01d1d94c096e06b48393389"
SMALL_PR_SHA = "933b85e1dc327216338555948e6662403acc30af"


def test_small_fixture_has_fixed_commit_ids(small: Path, tmp_path: Path) -> None:
    result = publish(small, tmp_path / "a.git")
    assert refs_of(result) == {MAIN: SMALL_MAIN_SHA, PR: SMALL_PR_SHA}
    assert result["changed"] is True and result["previous"] == {}


def test_user_git_configuration_cannot_change_commit_ids(tagged: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[commit]\n\tgpgsign = true\n[i18n]\n\tcommitEncoding = ISO-8859-1\n"
        "[user]\n\tname = Somebody Else\n\temail = else@example.invalid\n[init]\n\tdefaultObjectFormat = sha256\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_AUTHOR_DATE", "@0 +0000")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Intruder")
    assert refs_of(publish(tagged, tmp_path / "b.git")) == {MAIN: SMALL_MAIN_SHA, PR: SMALL_PR_SHA,
                                                            TAG: SMALL_TAG_SHA}


def test_main_leaves_out_the_pull_request_parts(small: Path, tmp_path: Path) -> None:
    dest = tmp_path / "r.git"
    publish(small, dest)
    assert tree_names(dest, MAIN) == ["README.md", "data.bin", "setup.py", "test/test_ok.py"]
    assert show(dest, MAIN, "setup.py") == "FLAGS = []\nprint(FLAGS)"
    # A marker mentioned in prose is not a marker.
    assert "BEGIN PR-558" in show(dest, MAIN, "README.md")
    assert git("--git-dir", str(dest), "rev-list", "--count", MAIN) == "1"


def test_pull_request_ref_is_exactly_the_fixture_on_top_of_main(small: Path, tmp_path: Path) -> None:
    dest = tmp_path / "r.git"
    refs = refs_of(publish(small, dest))
    assert git("--git-dir", str(dest), "rev-parse", f"{PR}^") == refs[MAIN]
    names = sorted(p.relative_to(small).as_posix() for p in small.rglob("*") if p.is_file())
    assert tree_names(dest, PR) == names
    work = tmp_path / "work"
    git("clone", "--quiet", str(dest), str(work))
    git("fetch", "--quiet", "origin", f"{PR}:pr_558", cwd=work)
    git("checkout", "--quiet", "pr_558", cwd=work)
    for name in names:
        assert (work / name).read_bytes() == (small / name).read_bytes(), name
    assert git("log", "-1", "--format=%an <%ae> %ad %cn %cd", "--date=iso-strict", cwd=work) == (
        "xpulab fixture <fixture@xpulab.invalid> 2025-08-21T12:00:00+00:00 "
        "xpulab fixture 2025-08-21T12:00:00+00:00")


def test_second_run_changes_nothing(small: Path, tmp_path: Path) -> None:
    dest = tmp_path / "r.git"
    first = publish(small, dest)
    info = (dest / "info" / "refs").read_bytes()
    second = publish(small, dest)
    assert second["changed"] is False
    assert refs_of(second) == refs_of(first) == second["previous"]
    assert (dest / "info" / "refs").read_bytes() == info


def test_server_info_is_written_for_dumb_http(small: Path, tmp_path: Path) -> None:
    dest = tmp_path / "r.git"
    refs = refs_of(publish(small, dest))
    assert (dest / "info" / "refs").read_text() == f"{refs[MAIN]}\t{MAIN}\n{refs[PR]}\t{PR}\n"
    assert (dest / "objects" / "info" / "packs").is_file()
    assert (dest / "HEAD").read_text() == f"ref: {MAIN}\n"


def test_advance_moves_the_ref_and_dropping_it_moves_it_back(small: Path, tmp_path: Path) -> None:
    dest = tmp_path / "r.git"
    base = refs_of(publish(small, dest))
    moved = publish(small, dest, "--advance", PR)
    new = refs_of(moved)
    assert moved["changed"] is True
    assert new[MAIN] == base[MAIN] and new[PR] != base[PR]
    assert git("--git-dir", str(dest), "rev-parse", f"{PR}^") == base[PR]
    assert "REVISION = 1  # advance 1 on refs/pull/558/head" in show(dest, PR, tool.REVISION_FILE)
    assert publish(small, dest, "--advance", "pull/558/head")["changed"] is False  # same inputs
    twice = refs_of(publish(small, dest, "--advance", PR, "--advance", PR))
    assert git("--git-dir", str(dest), "rev-parse", f"{PR}^") == new[PR]
    assert "REVISION = 2" in show(dest, PR, tool.REVISION_FILE)
    assert twice[PR] not in (new[PR], base[PR])
    back = publish(small, dest)
    assert back["changed"] is True and refs_of(back) == base  # a force-push, as on a rebase


def test_advance_main_leaves_the_pull_request_alone(small: Path, tmp_path: Path) -> None:
    dest = tmp_path / "r.git"
    base = refs_of(publish(small, dest))
    new = refs_of(publish(small, dest, "--advance", "main"))
    assert new[PR] == base[PR] and new[MAIN] != base[MAIN]
    assert tool.REVISION_FILE in tree_names(dest, MAIN)


def test_add_failing_test_adds_a_test_that_fails_by_name(small: Path, tmp_path: Path) -> None:
    dest = tmp_path / "r.git"
    base = refs_of(publish(small, dest))
    new = refs_of(publish(small, dest, "--add-failing-test", PR, "--add-failing-test", PR))
    assert git("--git-dir", str(dest), "rev-parse", f"{PR}~2") == base[PR]
    names = tree_names(dest, PR)
    assert {"test/test_new_regression.py", "test/test_new_regression_2.py"} <= set(names)
    work = tmp_path / "work"
    git("clone", "--quiet", str(dest), str(work))
    git("fetch", "--quiet", "origin", f"{PR}:pr", cwd=work)
    git("checkout", "--quiet", "pr", cwd=work)
    run = run_suite(work, new[PR])
    assert run.returncode == 1
    assert "FAILED test/test_new_regression.py::test_new_regression" in run.stdout
    assert "FAILED test/test_new_regression_2.py::test_new_regression_2" in run.stdout
    assert "2 failed, 1 passed" in run.stdout


def test_check_mode_writes_nothing(small: Path, tmp_path: Path) -> None:
    dest = tmp_path / "mirror" / "git" / "r.git"
    first = publish(small, dest, "--check")
    assert first["changed"] is True and first["check"] is True
    assert not (tmp_path / "mirror").exists()
    done = refs_of(publish(small, dest))
    assert refs_of(first) == done
    assert publish(small, dest, "--check")["changed"] is False
    before = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*"))
    assert publish(small, dest, "--check", "--advance", PR)["changed"] is True
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == before


def test_a_broken_head_is_repaired(small: Path, tmp_path: Path) -> None:
    dest = tmp_path / "r.git"
    publish(small, dest)
    (dest / "HEAD").write_text("ref: refs/heads/master\n")
    assert publish(small, dest, "--check")["changed"] is True
    assert publish(small, dest)["changed"] is True
    assert (dest / "HEAD").read_text() == f"ref: {MAIN}\n"


def test_git_work_tree_source_skips_ignored_files(tmp_path: Path, small: Path) -> None:
    repo = tmp_path / "outer"
    shutil.copytree(small, repo / "fixture")
    git("init", "--quiet", str(repo))
    (repo / ".gitignore").write_text("__pycache__/\n")
    (repo / "fixture" / ".gitignore").write_text("build/\n")
    (repo / "fixture" / "build").mkdir()
    (repo / "fixture" / "build" / "core.o").write_text("object")
    (repo / "fixture" / "__pycache__").mkdir()
    (repo / "fixture" / "__pycache__" / "x.pyc").write_text("cache")
    files = tool.collect_files(repo / "fixture")
    assert "build/core.o" not in files and "__pycache__/x.pyc" not in files
    assert {"setup.py", "xpu.c", ".gitignore"} <= set(files)


def test_http_clone_fetch_and_moved_ref(small: Path, tmp_path: Path) -> None:
    """What the torchcodec role does against the sandbox mirror, over real dumb HTTP."""
    mirror = tmp_path / "mirror"
    dest = mirror / "git" / "torchcodec.git"
    refs = refs_of(publish(small, dest))

    with serve(mirror) as base:
        url = f"{base}/git/torchcodec.git"
        work = tmp_path / "clone"
        git("clone", "--quiet", url, str(work))
        assert git("rev-parse", "HEAD", cwd=work) == refs[MAIN]
        git("fetch", "--quiet", "origin", f"{PR}:pr_558", cwd=work)
        git("checkout", "--quiet", "pr_558", cwd=work)
        assert (work / "xpu.c").read_bytes() == (small / "xpu.c").read_bytes()
        moved = refs_of(publish(small, dest, "--advance", PR))
        git("checkout", "--quiet", "--detach", cwd=work)
        git("fetch", "--quiet", "origin", f"+{PR}:pr_558", cwd=work)
        assert git("rev-parse", "pr_558", cwd=work) == moved[PR] != refs[PR]


def test_marker_errors_name_the_file_and_line() -> None:
    with pytest.raises(tool.FixtureError, match=r"a.py:3: BEGIN PR-558 inside the block opened at line 1"):
        tool.strip_pr_parts("a.py", b"# BEGIN PR-558\nx\n# BEGIN PR-558\n# END PR-558\n")
    with pytest.raises(tool.FixtureError, match=r"a.py:2: END PR-558 without BEGIN PR-558"):
        tool.strip_pr_parts("a.py", b"x\n# END PR-558\n")
    with pytest.raises(tool.FixtureError, match=r"a.c:2: BEGIN PR-558 is never closed"):
        tool.strip_pr_parts("a.c", b"x\n/* BEGIN PR-558 */\ny\n")


@pytest.mark.parametrize(("text", "expected"), [
    ("a\n    # BEGIN PR-558\nb\n    # END PR-558\nc\n", "a\nc\n"),
    ("a\n/* BEGIN PR-558 */\nb\n/* END PR-558 */\n", "a\n"),
    ("<!-- BEGIN PR-558 -->\nb\n<!-- END PR-558 -->\nc", "c"),
    ("says `# BEGIN PR-558` in prose\n", "says `# BEGIN PR-558` in prose\n"),
    ("# xpulab-fixture: pr-558-only\n", None),
    ("/*\n * xpulab-fixture: pr-558-only\n */\n", None),
    ("1\n2\n3\n4\n5\n# xpulab-fixture: pr-558-only\n", "1\n2\n3\n4\n5\n# xpulab-fixture: pr-558-only\n"),
])
def test_strip_pr_parts(text: str, expected: str | None) -> None:
    result = tool.strip_pr_parts("f", text.encode())
    assert result == (None if expected is None else expected.encode())


def test_binary_files_pass_through() -> None:
    assert tool.strip_pr_parts("x.bin", b"\xff\xfe# BEGIN PR-558\n") == b"\xff\xfe# BEGIN PR-558\n"


def test_a_fixture_without_pull_request_parts_is_refused(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("nothing to strip\n")
    run = subprocess.run([sys.executable, str(TOOL), "--source", str(tmp_path / "src"),
                          "--dest", str(tmp_path / "r.git")], capture_output=True, text=True, check=False)
    assert run.returncode == 1
    assert "has no pull-request parts" in run.stderr
    assert not (tmp_path / "r.git").exists()


def test_unknown_ref_is_a_usage_error(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(TOOL), "--dest", str(tmp_path / "r.git"), "--advance", "dev"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert "unknown ref 'dev'" in run.stderr


def test_options_keep_their_order() -> None:
    args = tool.parse_args(["--dest", "x", "--add-failing-test", "main", "--advance", PR, "--advance", "main"])
    assert args.ops == [tool.Op("failing-test", MAIN), tool.Op("advance", PR), tool.Op("advance", MAIN)]
    assert tool.parse_args(["--dest", "x"]).ops == []


# --------------------------------------------------------------------------
# The tag refs/tags/v0.17.0 (tags/v0.17.0/ of the fixture)


@pytest.fixture
def tagged(small: Path) -> Path:
    """The small fixture plus a tag tree."""
    suite = small / "tags" / "v0.17.0" / "test"
    suite.mkdir(parents=True)
    (suite.parent / "version.txt").write_text("0.17.0\n")
    (suite / "test_tag.py").write_text("def test_tag():\n    assert True\n")
    return small


SMALL_TAG_SHA = "6ccdd46ccd70c8db22d769539a90b2ad736da522"


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """A dumb HTTP server on 127.0.0.1 for ``directory``; yields its URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_tag_is_its_own_line_of_history(tagged: Path, tmp_path: Path) -> None:
    dest = tmp_path / "r.git"
    result = publish(tagged, dest)
    # The tag's files are left out of main and the pull request: their commits do not change.
    assert refs_of(result) == {MAIN: SMALL_MAIN_SHA, PR: SMALL_PR_SHA, TAG: SMALL_TAG_SHA}
    assert tree_names(dest, TAG) == ["test/test_tag.py", "version.txt"]
    assert git("--git-dir", str(dest), "rev-list", "--count", TAG) == "1"
    assert git("--git-dir", str(dest), "cat-file", "-t", TAG) == "commit"
    assert git("--git-dir", str(dest), "log", "-1", "--format=%an %ad", "--date=iso-strict", TAG) == (
        "xpulab fixture 2025-08-22T12:00:00+00:00")
    assert (dest / "info" / "refs").read_text().splitlines()[-1] == f"{SMALL_TAG_SHA}\t{TAG}"
    assert publish(tagged, dest)["changed"] is False


def test_add_failing_test_on_the_tag(tagged: Path, tmp_path: Path) -> None:
    dest = tmp_path / "r.git"
    base = refs_of(publish(tagged, dest))
    moved = publish(tagged, dest, "--add-failing-test", "v0.17.0")
    new = refs_of(moved)
    assert moved["changed"] is True and new[MAIN] == base[MAIN] and new[PR] == base[PR]
    assert git("--git-dir", str(dest), "rev-parse", f"{TAG}^") == base[TAG]
    work = tmp_path / "work"
    git("clone", "--quiet", str(dest), str(work))
    git("-c", "advice.detachedHead=false", "checkout", "--quiet", "v0.17.0", cwd=work)
    run = run_suite(work, new[TAG])
    assert run.returncode == 1
    assert "FAILED test/test_new_regression.py::test_new_regression" in run.stdout
    assert "1 failed, 1 passed" in run.stdout
    assert refs_of(publish(tagged, dest, "--advance", "refs/tags/v0.17.0"))[TAG] not in (base[TAG], new[TAG])
    back = publish(tagged, dest)
    assert back["changed"] is True and refs_of(back) == base  # a re-tag back to the original


def test_a_moved_tag_over_dumb_http(tagged: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    dest = mirror / "git" / "torchcodec.git"
    refs = refs_of(publish(tagged, dest))
    with serve(mirror) as url:
        work = tmp_path / "clone"
        git("clone", "--quiet", f"{url}/git/torchcodec.git", str(work))
        git("fetch", "--quiet", "origin", f"+{TAG}:{TAG}", cwd=work)
        assert git("rev-parse", "v0.17.0", cwd=work) == refs[TAG]
        moved = refs_of(publish(tagged, dest, "--add-failing-test", TAG))
        git("fetch", "--quiet", "origin", f"+{TAG}:{TAG}", cwd=work)  # "+": a moved tag is not fetched without
        assert git("rev-parse", "v0.17.0", cwd=work) == moved[TAG] != refs[TAG]
        git("-c", "advice.detachedHead=false", "checkout", "--quiet", "v0.17.0", cwd=work)
        assert (work / "test" / "test_new_regression.py").is_file()


def test_tag_operations_need_the_tag(small: Path, tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(TOOL), "--source", str(small), "--dest", str(tmp_path / "r.git"),
                          "--add-failing-test", "v0.17.0"], capture_output=True, text=True, check=False)
    assert run.returncode == 1
    assert "refs/tags/v0.17.0 is not published: the fixture has no tags/v0.17.0/" in run.stderr


def test_removing_the_tag_tree_deletes_the_tag(tagged: Path, tmp_path: Path) -> None:
    dest = tmp_path / "r.git"
    publish(tagged, dest)
    shutil.rmtree(tagged / "tags")
    assert publish(tagged, dest, "--check")["changed"] is True
    gone = publish(tagged, dest)
    assert gone["changed"] is True and refs_of(gone) == {MAIN: SMALL_MAIN_SHA, PR: SMALL_PR_SHA}
    assert TAG not in git("--git-dir", str(dest), "for-each-ref")
    assert TAG not in (dest / "info" / "refs").read_text()
    assert publish(tagged, dest)["changed"] is False


def test_only_the_known_tag_may_be_under_tags(small: Path, tmp_path: Path) -> None:
    (small / "tags" / "v9.9.9").mkdir(parents=True)
    (small / "tags" / "v9.9.9" / "x.txt").write_text("x\n")
    run = subprocess.run([sys.executable, str(TOOL), "--source", str(small), "--dest", str(tmp_path / "r.git")],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 1 and "tags/v9.9.9/x.txt: only tags/v0.17.0/ may be under tags/" in run.stderr


def test_tag_ref_aliases() -> None:
    args = tool.parse_args(["--dest", "x", "--add-failing-test", "v0.17.0", "--advance", "tags/v0.17.0",
                            "--add-failing-test", TAG])
    assert args.ops == [tool.Op("failing-test", TAG), tool.Op("advance", TAG), tool.Op("failing-test", TAG)]


# --------------------------------------------------------------------------
# The real fixture


def test_real_fixture_has_the_published_commit_ids(tmp_path: Path) -> None:
    refs = refs_of(publish(FIXTURE, tmp_path / "torchcodec.git"))
    assert refs == {MAIN: FIXTURE_MAIN_SHA, PR: FIXTURE_PR_SHA, TAG: FIXTURE_TAG_SHA}, (
        "tests/fixtures/torchcodec changed: if on purpose, update FIXTURE_*_SHA here")


def test_sandbox_pins_the_fixture_commits(tmp_path: Path) -> None:
    """The sandbox and the torchcodec scenario pin these commits (torchcodec_git_commit, compatibility rows,
    known failures), including the ones the scenario moves refs/pull/558/head to."""
    group_vars = ROOT / "inventories" / "sandbox" / "group_vars" / "all"
    pinned = yaml.safe_load((group_vars / "torchcodec_fixture.yml").read_text())["xpulab_torchcodec_fixture_commits"]
    dest = tmp_path / "torchcodec.git"
    refs = refs_of(publish(FIXTURE, dest))
    assert pinned == {
        "main": refs[MAIN], "pull_558": refs[PR], "tag_v0_17_0": refs[TAG],
        "pull_558_advanced": refs_of(publish(FIXTURE, dest, "--advance", PR))[PR],
        "pull_558_failing_test": refs_of(publish(FIXTURE, dest, "--add-failing-test", PR))[PR],
    }, "tests/fixtures/torchcodec changed: update xpulab_torchcodec_fixture_commits and the shas that use them"
    for path in [*group_vars.glob("torchcodec*.yml"), *(ROOT / "molecule" / "torchcodec" / "vars").glob("*.yml")]:
        for sha in re.findall(r"\b[0-9a-f]{40}\b", path.read_text()):
            assert sha in pinned.values(), f"{path.relative_to(ROOT)}: {sha} is not a commit of the fixture"


def test_real_fixture_variants(tmp_path: Path) -> None:
    dest = tmp_path / "torchcodec.git"
    publish(FIXTURE, dest)
    main_names, pr_names = set(tree_names(dest, MAIN)), set(tree_names(dest, PR))
    assert pr_names - main_names == {"csrc/xpu.c", "test/test_xpu.py"}
    assert not any(name.startswith("tags/") for name in pr_names)
    assert {"setup.py", "version.txt", "csrc/core.c", "src/torchcodec/__init__.py",
            "test/test_known_failure.py", "README.md", "LICENSE"} <= main_names
    main_setup = show(dest, MAIN, "setup.py")
    assert 'env.get("ENABLE_XPU"' not in main_setup and "def xpu_flags" not in main_setup
    assert 'env.get("ENABLE_XPU"' in show(dest, PR, "setup.py")
    assert "xpu_probe" not in show(dest, MAIN, "csrc/core.c")
    compile(main_setup, "setup.py", "exec")
    assert show(dest, PR, "version.txt") == "0.7.0a0+xpulab.fixture"
    for ref in (MAIN, PR, TAG):
        for name in ("README.md", "LICENSE"):
            assert "xpulab" in show(dest, ref, name) and "NOT TorchCodec" in show(dest, ref, name)


def test_real_fixture_tag_is_a_test_suite_for_torchcodec_0_17(tmp_path: Path) -> None:
    dest = tmp_path / "torchcodec.git"
    publish(FIXTURE, dest)
    names = tree_names(dest, TAG)
    assert names == sorted(p.relative_to(FIXTURE / "tags" / "v0.17.0").as_posix()
                           for p in (FIXTURE / "tags" / "v0.17.0").rglob("*") if p.is_file()
                           and "__pycache__" not in p.parts)
    assert "test/test_known_failure.py" in names and "test/test_xpu.py" in names and "setup.py" not in names
    assert show(dest, TAG, "version.txt") == "0.17.0"
    assert git("--git-dir", str(dest), "rev-list", "--parents", "-n", "1", TAG) == FIXTURE_TAG_SHA  # no parent
    assert git("--git-dir", str(dest), "cat-file", "-t", TAG) == "commit"  # a lightweight tag
    # The suite needs only pytest, numpy, torch and torchcodec (and the standard library).
    imported: set[str] = set()
    for name in names:
        if name.endswith(".py"):
            tree = ast.parse(show(dest, TAG, name), name)
            imported |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            imported |= {str(n.module).split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported - set(sys.stdlib_module_names) == {"pytest", "numpy", "torch", "torchcodec"}
    known = show(dest, TAG, "test/test_known_failure.py")
    assert "def test_known_failure_on_xpulab_fixture" in known
    assert "torch.xpu.is_available()" in show(dest, TAG, "test/test_xpu.py")


# --------------------------------------------------------------------------
# The fixture's setup.py: the build contract, without a compiler


FAKE_PKG_CONFIG = """#!/bin/sh
# Fake pkg-config: the modules listed in $FAKE_PC_MODULES exist.
mode=flags; want_c=0; want_l=0; mods=""; rc=0
for arg in "$@"; do
  case "$arg" in
    --exists) mode=exists ;;
    --modversion) mode=version ;;
    --cflags) want_c=1 ;;
    --libs) want_l=1 ;;
    -*) ;;
    *) case " $FAKE_PC_MODULES " in
         *" $arg "*) mods="$mods $arg" ;;
         *) echo "Package '$arg', required by 'virtual:world', not found" >&2; rc=1 ;;
       esac ;;
  esac
done
[ "$rc" = 0 ] || exit 1
case "$mode" in
  version) echo "$FAKE_LIBAVCODEC_VERSION" ;;
  flags) out=""
    [ "$want_c" = 1 ] && out="-I/fake/include"
    if [ "$want_l" = 1 ]; then out="$out -L/fake/lib"; for m in $mods; do out="$out -l$m"; done; fi
    echo "$out" ;;
esac
exit 0
"""


@pytest.fixture
def fake_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """An importable stand-in for torch under another name (torch.xpu included)."""
    name = f"faketorch_{os.getpid()}_{abs(hash(tmp_path)) % 10**8}"
    package = tmp_path / "pylib" / name
    (package / "xpu").mkdir(parents=True)
    (package / "__init__.py").write_text("from . import version\n__version__ = '2.14.1+fake'\n")
    (package / "version.py").write_text("xpu = None\n")
    (package / "xpu" / "__init__.py").write_text("def is_available():\n    return False\n")
    monkeypatch.syspath_prepend(str(tmp_path / "pylib"))
    module = importlib.import_module(name)
    yield module
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Build environment with FFmpeg 7.1 and nothing for XPU."""
    script = tmp_path / "pkg-config"
    script.write_text(FAKE_PKG_CONFIG)
    script.chmod(0o755)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PKG_CONFIG": str(script),
            "FAKE_PC_MODULES": "libavcodec libavutil", "FAKE_LIBAVCODEC_VERSION": "61.19.101"}


@pytest.mark.parametrize(("value", "truth"), [
    (None, False), ("", False), ("0", False), ("OFF", False), ("off", False), ("No", False), ("FALSE", False),
    ("N", False), ("IGNORE", False), ("NOTFOUND", False), ("X-NOTFOUND", False),
    ("1", True), ("ON", True), ("yes", True), ("TRUE", True), ("Y", True), ("2", True), ("anything", True),
])
def test_cmake_truth(value: str | None, truth: bool) -> None:
    assert fixture_setup.cmake_true(value) is truth


def test_wheel_builds_need_the_licence_confirmation() -> None:
    with pytest.raises(SystemExit, match=r"It looks like you're trying to build a wheel\. You probably want to set "
                       r"BUILD_AGAINST_ALL_FFMPEG_FROM_S3\. If you have a good reason \*not\* to, then set "
                       r"I_CONFIRM_THIS_IS_NOT_A_LICENSE_VIOLATION\."):
        fixture_setup.check_license(["setup.py", "bdist_wheel", "--dist-dir", "x"], {})
    fixture_setup.check_license(["setup.py", "bdist_wheel"], {"I_CONFIRM_THIS_IS_NOT_A_LICENSE_VIOLATION": "1"})
    fixture_setup.check_license(["setup.py", "develop"], {})  # TorchCodec checks wheels only
    with pytest.raises(SystemExit, match="download"):
        fixture_setup.check_license(["setup.py", "bdist_wheel"], {"BUILD_AGAINST_ALL_FFMPEG_FROM_S3": "1"})


def test_missing_torch_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(SystemExit, match=r"cannot import torch at build time.*--no-build-isolation"):
        fixture_setup.import_torch()


def test_configure_defaults_to_werror(env: dict[str, str], fake_torch: ModuleType) -> None:
    config = fixture_setup.configure(env, fake_torch)
    assert config.sources == ["csrc/core.c"]
    assert config.compile_args == ["-I/fake/include", "-Wall", "-Wextra", "-Werror"]
    assert config.link_args == ["-L/fake/lib", "-llibavcodec", "-llibavutil"]
    assert config.header["XPULAB_WERROR"] == 1 and config.header["XPULAB_ENABLE_XPU"] == 0
    assert config.header["XPULAB_TORCH_VERSION"] == "2.14.1+fake"
    assert config.header["XPULAB_PKGCONFIG_LIBAVCODEC_VERSION"] == "61.19.101"
    assert config.header["XPULAB_FFMPEG_MAJOR"] == "7"


@pytest.mark.parametrize(("switch", "werror"), [("ON", False), ("1", False), ("yes", False),
                                                ("OFF", True), ("0", True), ("", True)])
def test_warning_switch(env: dict[str, str], fake_torch: ModuleType, switch: str, werror: bool) -> None:
    env["TORCHCODEC_DISABLE_COMPILE_WARNING_AS_ERROR"] = switch
    assert ("-Werror" in fixture_setup.configure(env, fake_torch).compile_args) is werror


def test_ffmpeg_missing_from_pkg_config(env: dict[str, str], fake_torch: ModuleType) -> None:
    env["FAKE_PC_MODULES"] = "libavutil"
    env["PKG_CONFIG_PATH"] = "/opt/ffmpeg/current/lib/pkgconfig"
    with pytest.raises(SystemExit) as caught:
        fixture_setup.configure(env, fake_torch)
    message = str(caught.value)
    assert "pkg-config cannot find FFmpeg (PKG_CONFIG_PATH='/opt/ffmpeg/current/lib/pkgconfig')" in message
    assert "`pkg-config --cflags --libs libavcodec libavutil` said:" in message
    assert "Package 'libavcodec', required by 'virtual:world', not found" in message


def test_pkg_config_missing(env: dict[str, str], fake_torch: ModuleType, tmp_path: Path) -> None:
    env["PKG_CONFIG"] = str(tmp_path / "no-such-pkg-config")
    with pytest.raises(SystemExit, match=r"Could NOT find PkgConfig \(missing: PKG_CONFIG_EXECUTABLE\)"):
        fixture_setup.configure(env, fake_torch)


def test_unsupported_ffmpeg_major(env: dict[str, str], fake_torch: ModuleType) -> None:
    env["FAKE_LIBAVCODEC_VERSION"] = "62.11.100"
    with pytest.raises(SystemExit, match="Unsupported libavcodec version: 62"):
        fixture_setup.configure(env, fake_torch)


C10_XPU = 'The link interface of target "c10_xpu" contains: torch::xpurt but the target was not found'


def test_enable_xpu_without_oneapi(env: dict[str, str], fake_torch: ModuleType, tmp_path: Path) -> None:
    env["ENABLE_XPU"] = "1"
    for oneapi in (None, str(tmp_path / "missing")):
        if oneapi:
            env["ONEAPI_ROOT"] = oneapi
        with pytest.raises(SystemExit) as caught:
            fixture_setup.configure(env, fake_torch)
        message = str(caught.value)
        assert C10_XPU in message
        assert 'CMake Error at ' in message and '  The link interface of target "c10_xpu" contains:' in message
        assert "setvars.sh" in message


@pytest.mark.parametrize(("present", "missing", "package"), [
    ("libavcodec libavutil", "level-zero", "libze-dev"),
    ("libavcodec libavutil level-zero", "libva", "libva-dev"),
])
def test_enable_xpu_names_the_missing_module(env: dict[str, str], fake_torch: ModuleType, tmp_path: Path,
                                             present: str, missing: str, package: str) -> None:
    env.update(ENABLE_XPU="ON", ONEAPI_ROOT=str(tmp_path), FAKE_PC_MODULES=present)
    with pytest.raises(SystemExit) as caught:
        fixture_setup.configure(env, fake_torch)
    message = str(caught.value)
    assert f"No package '{missing}' found" in message
    assert f"pkg-config module '{missing}' (Debian/Ubuntu package {package}" in message


def test_enable_xpu_builds_the_xpu_part(env: dict[str, str], fake_torch: ModuleType, tmp_path: Path) -> None:
    env.update(ENABLE_XPU="1", ONEAPI_ROOT=str(tmp_path), FAKE_PC_MODULES="libavcodec libavutil level-zero libva")
    config = fixture_setup.configure(env, fake_torch)
    assert config.sources == ["csrc/core.c", "csrc/xpu.c"]
    assert ("ENABLE_XPU", None) in config.macros
    assert "-llevel-zero" in config.link_args and "-llibva" in config.link_args
    assert config.header["XPULAB_ENABLE_XPU"] == 1 and config.header["XPULAB_ONEAPI_ROOT_SET"] == 1


def test_enable_xpu_needs_torch_xpu(env: dict[str, str], fake_torch: ModuleType, tmp_path: Path) -> None:
    shutil.rmtree(Path(str(fake_torch.__file__)).parent / "xpu")
    importlib.invalidate_caches()
    env.update(ENABLE_XPU="1", ONEAPI_ROOT=str(tmp_path), FAKE_PC_MODULES="libavcodec libavutil level-zero libva")
    with pytest.raises(SystemExit, match=r"ENABLE_XPU needs a torch with the XPU backend"):
        fixture_setup.configure(env, fake_torch)


def test_xpu_torch_needs_oneapi_even_without_enable_xpu(env: dict[str, str], fake_torch: ModuleType) -> None:
    fake_torch.version.xpu = "20250101"
    with pytest.raises(SystemExit, match="c10_xpu"):
        fixture_setup.configure(env, fake_torch)


def test_main_branch_setup_ignores_enable_xpu(env: dict[str, str], fake_torch: ModuleType,
                                              tmp_path: Path) -> None:
    stripped = tool.strip_pr_parts("setup.py", (FIXTURE / "setup.py").read_bytes())
    assert stripped is not None
    (tmp_path / "main_setup.py").write_bytes(stripped)
    main_setup = _load("xpulab_torchcodec_fixture_main_setup", tmp_path / "main_setup.py")
    env.update(ENABLE_XPU="1")
    config = main_setup.configure(env, fake_torch)
    assert config.sources == ["csrc/core.c"] and config.header["XPULAB_ENABLE_XPU"] == 0


def test_version_from_version_txt_and_commit(tmp_path: Path) -> None:
    repo = tmp_path / "tc"
    repo.mkdir()
    (repo / "version.txt").write_text("0.7.0a0+xpulab.fixture\n")
    assert fixture_setup.package_version({}, repo) == "0.7.0a0+xpulab.fixture"  # not a checkout of its own
    git("init", "--quiet", str(repo))
    git("add", "version.txt", cwd=repo)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "v", cwd=repo)
    sha = git("rev-parse", "HEAD", cwd=repo)
    assert fixture_setup.package_version({}, repo) == f"0.7.0a0+xpulab.fixture.g{sha[:7]}"
    assert fixture_setup.package_version({"BUILD_VERSION": "1.2.3"}, repo) == "1.2.3"
    (repo / "version.txt").write_text("0.7.0a0\n")
    assert fixture_setup.package_version({}, repo) == f"0.7.0a0+g{sha[:7]}"


def test_header_escapes_strings() -> None:
    text = fixture_setup.render_header({"A": 'x"y\\z', "B": None, "C": 3, "D": "é"})
    assert '#define A "x\\"y\\\\z"' in text
    assert "#define B NULL" in text and "#define C 3" in text
    assert '#define D "\\303\\251"' in text


def test_setup_py_refuses_a_wheel_end_to_end(tmp_path: Path, fake_torch: ModuleType) -> None:
    """`setup.py bdist_wheel` (what pip runs) with torch importable but no confirmation."""
    work = tmp_path / "tc"
    shutil.copytree(FIXTURE, work, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    torch_dir = tmp_path / "torchpath" / "torch"
    shutil.copytree(Path(str(fake_torch.__file__)).parent, torch_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("I_CONFIRM", "BUILD_AGAINST"))}
    env["PYTHONPATH"] = str(tmp_path / "torchpath")
    run = subprocess.run([sys.executable, "setup.py", "bdist_wheel"], cwd=work, env=env,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 1
    assert "It looks like you're trying to build a wheel." in run.stderr
    del env["PYTHONPATH"]
    run = subprocess.run([sys.executable, "setup.py", "bdist_wheel"], cwd=work, env=env,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 1
    assert "cannot import torch at build time" in run.stderr

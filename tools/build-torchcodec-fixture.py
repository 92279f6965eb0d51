#!/usr/bin/env python3
"""Publish the TorchCodec stand-in fixture as a bare git repository for dumb HTTP.

    build-torchcodec-fixture.py --dest MIRROR/git/torchcodec.git
        [--source tests/fixtures/torchcodec]
        [--advance REF]... [--add-failing-test REF]... [--check]

turns the fixture tree into commits with fixed author, committer, dates and
messages, so the commit IDs are the same on every machine:

    refs/heads/main      the tree without the pull-request parts: files whose
                         first lines say ``xpulab-fixture: pr-558-only`` are
                         left out, lines from ``BEGIN PR-558`` to ``END PR-558``
                         are cut
    refs/pull/558/head   one commit on top of main: exactly the fixture tree,
                         except tags/
    refs/tags/v0.17.0    (when the fixture has tags/v0.17.0/) a lightweight tag
                         on a commit with no parent, its own line of history:
                         the files under tags/v0.17.0/, at the top of its tree

``--advance REF`` adds one more commit to REF (it rewrites
src/torchcodec/_fixture_revision.py: REVISION = n), ``--add-failing-test
REF`` adds a commit with one new failing test (test/test_new_regression.py::
test_new_regression, then _2, _3, ...); REF is main, pull/558/head or
v0.17.0 (full names work too; a moved tag is a re-tag). Both may repeat; they
apply in the order given. The result is a function of the inputs: running
again with the same ones changes nothing, running without them puts the refs
back (a force-push, as when a pull request is rebased).

The repository is then prepared for a dumb HTTP server (``git
update-server-info``), and one JSON object is printed:
``{"changed": bool, "dest": ..., "refs": {ref: sha}, "previous": {ref: sha}}``.
``--check`` computes the same without writing anything.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from xpulab_fsutil import locked

PR_NUMBER = 558
MAIN_REF = "refs/heads/main"
PR_REF = f"refs/pull/{PR_NUMBER}/head"
TAG_NAME = "v0.17.0"
TAG_REF = f"refs/tags/{TAG_NAME}"
MANAGED_REFS = (MAIN_REF, PR_REF, TAG_REF)
# Files under TAGS_DIR are not part of main or the pull request; the ones
# under TAG_DIR make the tree of TAG_REF.
TAGS_DIR = "tags/"
TAG_DIR = f"{TAGS_DIR}{TAG_NAME}/"
PR_ONLY_MARK = f"xpulab-fixture: pr-{PR_NUMBER}-only"
PR_ONLY_MARK_LINES = 5
BEGIN_MARK = f"BEGIN PR-{PR_NUMBER}"
END_MARK = f"END PR-{PR_NUMBER}"


def _comment_line(text: str) -> re.Pattern[str]:
    """A line that is only a comment (#, //, /* */, * or <!-- -->) holding ``text``."""
    return re.compile(r"\s*(?:#|//|/\*|\*|<!--)\s*" + re.escape(text) + r"\s*(?:\*/|-->)?\s*")


PR_ONLY_LINE = _comment_line(PR_ONLY_MARK)
BEGIN_LINE = _comment_line(BEGIN_MARK)
END_LINE = _comment_line(END_MARK)
REVISION_FILE = "src/torchcodec/_fixture_revision.py"
IDENTITY = ("xpulab fixture", "fixture@xpulab.invalid")
# 2025-08-20T12:00:00Z: the day pull request 558 was last rebased.
EPOCH = 1755691200
# The tag's commit: a fixed date after main and the pull request, before any
# --advance or --add-failing-test commit (EPOCH + 2 days + n hours).
TAG_EPOCH = EPOCH + 2 * 86400
DEFAULT_SOURCE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "torchcodec"
WALK_SKIP = {".git", "__pycache__", ".pytest_cache"}


class FixtureError(Exception):
    """A failure to report to the caller (exit code 1, message on stderr)."""


Files = dict[str, bytes]


@dataclass(frozen=True)
class Op:
    kind: str  # "advance" or "failing-test"
    ref: str


# --------------------------------------------------------------------------
# The fixture's files and its two variants


def _git_env() -> dict[str, str]:
    """git with no user or system configuration: nothing may change an object ID."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(LC_ALL="C", GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull,
               GIT_TERMINAL_PROMPT="0")
    return env


def _run(args: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
         data: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(list(args), cwd=cwd, env=dict(env) if env is not None else _git_env(),
                              input=data, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise FixtureError(f"cannot run {args[0]!r}: {exc} (install git)") from exc
    if done.returncode != 0:
        raise FixtureError(f"`{' '.join(args)}` failed ({done.returncode}): "
                           f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _inside_git_work_tree(path: Path) -> bool:
    try:
        out = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=path, env=_git_env(),
                             capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise FixtureError(f"cannot run 'git': {exc} (install git)") from exc
    return out.returncode == 0 and out.stdout.strip() == "true"


def collect_files(source: Path) -> Files:
    """The fixture's files by POSIX path. In a git work tree: what git would
    track there (tracked or untracked, not ignored); elsewhere: every file
    except caches."""
    if not source.is_dir():
        raise FixtureError(f"fixture source {source} is not a directory")
    names: list[str] = []
    if _inside_git_work_tree(source):
        out = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."],
                   cwd=source)
        names = sorted({n for n in out.decode().split("\0") if n})
    else:
        for root, dirs, filenames in os.walk(source):
            dirs[:] = sorted(d for d in dirs if d not in WALK_SKIP)
            rel = Path(root).relative_to(source)
            names += [(rel / f).as_posix() for f in filenames if not f.endswith(".pyc")]
    files: Files = {}
    for name in sorted(names):
        path = source / name
        if path.is_symlink():
            raise FixtureError(f"{path}: symbolic links are not supported in the fixture")
        if path.is_file():  # tracked files deleted from the work tree are skipped
            files[name] = path.read_bytes()
    if not files:
        raise FixtureError(f"fixture source {source} has no files")
    return files


def strip_pr_parts(name: str, content: bytes) -> bytes | None:
    """The main-branch version of one file: None when the file exists only in the PR."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return content  # binary files carry no markers
    lines = text.splitlines(keepends=True)
    if any(PR_ONLY_LINE.fullmatch(line) for line in lines[:PR_ONLY_MARK_LINES]):
        return None
    kept: list[str] = []
    begin_line = 0
    for number, line in enumerate(lines, start=1):
        if BEGIN_LINE.fullmatch(line):
            if begin_line:
                raise FixtureError(f"{name}:{number}: {BEGIN_MARK} inside the block opened at line {begin_line}")
            begin_line = number
        elif END_LINE.fullmatch(line):
            if not begin_line:
                raise FixtureError(f"{name}:{number}: {END_MARK} without {BEGIN_MARK}")
            begin_line = 0
        elif not begin_line:
            kept.append(line)
    if begin_line:
        raise FixtureError(f"{name}:{begin_line}: {BEGIN_MARK} is never closed by {END_MARK}")
    return "".join(kept).encode("utf-8")


def split_tags(files: Files) -> tuple[Files, Files | None]:
    """(the files of main and the pull request, the tree of the tag or None)."""
    branch = {n: c for n, c in files.items() if not n.startswith(TAGS_DIR)}
    tagged = {n[len(TAG_DIR):]: c for n, c in files.items() if n.startswith(TAG_DIR)}
    stray = sorted(n for n in files if n.startswith(TAGS_DIR) and not n.startswith(TAG_DIR))
    if stray:
        raise FixtureError(f"{', '.join(stray)}: only {TAG_DIR} may be under {TAGS_DIR} (the tag {TAG_REF})")
    return branch, tagged or None


def main_variant(files: Files) -> Files:
    """The tree of main; the fixture must have pull-request parts."""
    base: Files = {}
    for name, content in files.items():
        stripped = strip_pr_parts(name, content)
        if stripped is not None:
            base[name] = stripped
    if base == files:
        raise FixtureError(f"the fixture has no pull-request parts ({PR_ONLY_MARK!r} or {BEGIN_MARK!r} markers)")
    return base


def revision_file(revision: int, ref: str) -> bytes:
    return (
        '"""Revision of the xpulab TorchCodec fixture (NOT TorchCodec).\n\n'
        "tools/build-torchcodec-fixture.py --advance REF rewrites this file in the\n"
        "extra commit it adds, so a build of the moved ref reports a new revision.\n"
        '"""\n\n'
        f"REVISION = {revision}  # advance {revision} on {ref}\n"
    ).encode()


def failing_test_file(index: int) -> tuple[str, bytes]:
    suffix = "" if index == 1 else f"_{index}"
    name = f"test_new_regression{suffix}"
    text = (
        f'"""A new regression added by tools/build-torchcodec-fixture.py --add-failing-test\n'
        f'(xpulab TorchCodec fixture, NOT TorchCodec): {name} fails on purpose."""\n\n\n'
        f"def {name}():\n"
        f'    assert 1 + 1 == 3, "xpulab fixture: new regression {index}"\n'
    )
    return f"test/{name}.py", text.encode()


# --------------------------------------------------------------------------
# Git objects


class Repo:
    """A bare repository driven with plumbing commands and no outside configuration."""

    def __init__(self, git_dir: Path) -> None:
        self.git_dir = git_dir
        self._blobs: dict[bytes, str] = {}

    def git(self, *args: str, data: bytes | None = None, env: Mapping[str, str] | None = None) -> str:
        full_env = _git_env()
        full_env["GIT_DIR"] = str(self.git_dir)
        full_env.update(env or {})
        return _run(["git", *args], env=full_env, data=data).decode().strip()

    @classmethod
    def init(cls, git_dir: Path) -> Repo:
        git_dir.parent.mkdir(parents=True, exist_ok=True)
        _run(["git", "init", "--quiet", "--bare", "--object-format=sha1", "--template=", str(git_dir)])
        repo = cls(git_dir)
        repo.git("symbolic-ref", "HEAD", MAIN_REF)
        return repo

    def blob(self, content: bytes) -> str:
        if content not in self._blobs:
            self._blobs[content] = self.git("hash-object", "-w", "--stdin", data=content)
        return self._blobs[content]

    def tree(self, files: Files) -> str:
        entries = "".join(f"100644 {self.blob(content)}\t{name}\n" for name, content in sorted(files.items()))
        with tempfile.TemporaryDirectory(prefix="xpulab-fixture-index.") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self.git("update-index", "--add", "--index-info", data=entries.encode(), env=env)
            return self.git("write-tree", env=env)

    def commit(self, tree: str, parents: Sequence[str], message: str, when: int) -> str:
        name, email = IDENTITY
        stamp = f"@{when} +0000"
        env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": stamp,
               "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email, "GIT_COMMITTER_DATE": stamp}
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        return self.git(*args, data=message.encode(), env=env)

    def refs(self) -> dict[str, str]:
        refs: dict[str, str] = {}
        for line in self.git("for-each-ref", "--format=%(refname) %(objectname)").splitlines():
            ref, _, sha = line.partition(" ")
            refs[ref] = sha
        return refs

    def head(self) -> str:
        return self.git("symbolic-ref", "HEAD")


def build_commits(repo: Repo, base: Files, files: Files, ops: Sequence[Op],
                  tagged: Files | None = None) -> dict[str, str]:
    """Write every object into ``repo``; return the wanted value of each managed ref
    (without the tag when ``tagged`` is None)."""
    main = repo.commit(
        repo.tree(base), [], "xpulab TorchCodec fixture 0.7.0a0 (stands in for TorchCodec main)\n\n"
        "Test fixture of the xpulab project, NOT TorchCodec.\n", EPOCH)
    pull = repo.commit(
        repo.tree(files), [main], f"[xpulab fixture] Add Intel GPU (XPU) support, ENABLE_XPU=1\n\n"
        f"Stands in for pytorch/torchcodec pull request {PR_NUMBER}; NOT TorchCodec.\n", EPOCH + 86400)
    tips = {MAIN_REF: main, PR_REF: pull}
    trees = {MAIN_REF: dict(base), PR_REF: dict(files)}
    if tagged is not None:
        tips[TAG_REF] = repo.commit(
            repo.tree(tagged), [], f"xpulab TorchCodec fixture {TAG_NAME}: a test suite for torchcodec "
            f"{TAG_NAME[1:]}\n\nStands in for TorchCodec's {TAG_NAME} tag; test fixture of the xpulab project, "
            "NOT TorchCodec.\n", TAG_EPOCH)
        trees[TAG_REF] = dict(tagged)
    advances = dict.fromkeys(tips, 0)
    failing = dict.fromkeys(tips, 0)
    for index, op in enumerate(ops, start=1):
        if op.ref not in tips:
            raise FixtureError(f"{op.ref} is not published: the fixture has no {TAG_DIR}")
        tree = trees[op.ref]
        if op.kind == "advance":
            advances[op.ref] += 1
            tree[REVISION_FILE] = revision_file(advances[op.ref], op.ref)
            message = f"[xpulab fixture] Advance {op.ref} ({advances[op.ref]})\n"
        else:
            failing[op.ref] += 1
            path, content = failing_test_file(failing[op.ref])
            tree[path] = content
            message = f"[xpulab fixture] Add failing test {path} to {op.ref}\n"
        tips[op.ref] = repo.commit(repo.tree(tree), [tips[op.ref]], message, EPOCH + 2 * 86400 + 3600 * index)
    return tips


# --------------------------------------------------------------------------
# Publishing


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def expected_info_refs(refs: Mapping[str, str]) -> bytes:
    return "".join(f"{sha}\t{ref}\n" for ref, sha in sorted(refs.items())).encode()


def _state(dest: Path) -> tuple[bool, dict[str, str], bool]:
    """(exists, refs, HEAD is main) of the published repository."""
    if not (dest / "HEAD").is_file():
        return False, {}, False
    repo = Repo(dest)
    return True, repo.refs(), repo.head() == MAIN_REF


def check(source: Path, dest: Path, ops: Sequence[Op]) -> dict[str, object]:
    """What publish() would do, computed in a scratch repository; writes nothing to ``dest``."""
    files, tagged = split_tags(collect_files(source))
    base = main_variant(files)
    _, previous, head_ok = _state(dest)
    with tempfile.TemporaryDirectory(prefix="xpulab-fixture-check.") as tmp:
        wanted = build_commits(Repo.init(Path(tmp) / "scratch.git"), base, files, ops, tagged)
    others = {r: s for r, s in previous.items() if r not in MANAGED_REFS}
    info_ok = _read(dest / "info" / "refs") == expected_info_refs({**others, **wanted})
    changed = not (head_ok and info_ok and all(previous.get(r) == wanted.get(r) for r in MANAGED_REFS))
    return {"changed": changed, "dest": str(dest), "refs": wanted, "previous": previous, "check": True}


def publish(source: Path, dest: Path, ops: Sequence[Op]) -> dict[str, object]:
    """Create or update ``dest`` so that its managed refs are the wanted commits."""
    files, tagged = split_tags(collect_files(source))
    base = main_variant(files)
    with locked(dest.with_name(f"{dest.name}.lock")):
        exists, previous, head_ok = _state(dest)
        repo = Repo(dest) if exists else Repo.init(dest)
        if not head_ok:
            repo.git("symbolic-ref", "HEAD", MAIN_REF)
        wanted = build_commits(repo, base, files, ops, tagged)
        for ref in MANAGED_REFS:
            if ref in wanted and previous.get(ref) != wanted[ref]:
                repo.git("update-ref", ref, wanted[ref])
            elif ref not in wanted and ref in previous:  # the fixture no longer has it
                repo.git("update-ref", "-d", ref)
        info_before = _read(dest / "info" / "refs"), _read(dest / "objects" / "info" / "packs")
        repo.git("update-server-info")
        info_after = _read(dest / "info" / "refs"), _read(dest / "objects" / "info" / "packs")
        changed = (not head_ok or info_before != info_after
                   or any(previous.get(r) != wanted.get(r) for r in MANAGED_REFS))
        return {"changed": changed, "dest": str(dest), "refs": wanted, "previous": previous, "check": False}


def normalize_ref(value: str) -> str:
    aliases = {"main": MAIN_REF, "heads/main": MAIN_REF, MAIN_REF: MAIN_REF,
               f"pull/{PR_NUMBER}/head": PR_REF, PR_REF: PR_REF,
               TAG_NAME: TAG_REF, f"tags/{TAG_NAME}": TAG_REF, TAG_REF: TAG_REF}
    if value not in aliases:
        raise argparse.ArgumentTypeError(f"unknown ref {value!r}: use one of {', '.join(MANAGED_REFS)}")
    return aliases[value]


class _OpAction(argparse.Action):
    """Keeps --advance and --add-failing-test in one list, in command-line order."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        ops: list[Op] = list(getattr(namespace, "ops", None) or [])
        ops.append(Op(str(self.const), str(values)))
        namespace.ops = ops


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help=f"fixture tree (default: {DEFAULT_SOURCE})")
    parser.add_argument("--dest", type=Path, required=True, help="bare repository to create or update")
    parser.add_argument("--advance", metavar="REF", type=normalize_ref, action=_OpAction, const="advance",
                        dest="ops", help="add one more commit to REF (repeatable)")
    parser.add_argument("--add-failing-test", metavar="REF", type=normalize_ref, action=_OpAction,
                        const="failing-test", dest="ops", help="add a commit with a new failing test to REF")
    parser.add_argument("--check", action="store_true", help="report what would change; write nothing")
    args = parser.parse_args(argv)
    args.ops = list(args.ops or [])
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        source, dest = args.source.resolve(), args.dest.absolute()
        result = check(source, dest, args.ops) if args.check else publish(source, dest, args.ops)
    except FixtureError as exc:
        print(f"build-torchcodec-fixture: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The xpulab_state module (record / probe) and the xpulab_tree_digest filter."""

from __future__ import annotations

import grp
import json
import os
from pathlib import Path
from typing import Any

import module_runner
import pytest
import xpulab
import xpulab_state


def run(tmp_path: Path, **args: Any) -> tuple[int, dict[str, Any]]:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return module_runner.run_module("xpulab_state", work, {"name": "demo", "facts_dir": str(tmp_path / "facts"),
                                                           **args})


@pytest.fixture
def owned(tmp_path: Path) -> Path:
    path = tmp_path / "owned.conf"
    path.write_text("one\n")
    return path


def test_no_record_is_not_settled(tmp_path: Path, owned: Path) -> None:
    rc, result = run(tmp_path, fingerprint="aaa", files=[str(owned)])
    assert rc == 0 and result["settled"] is False and result["changed"] is False
    assert result["recorded"] is None
    assert result["drift"][0] == "no complete run recorded"


def test_record_then_probe_is_settled(tmp_path: Path, owned: Path) -> None:
    rc, result = run(tmp_path, state="record", fingerprint="aaa", files=[str(owned)])
    assert rc == 0 and result["changed"] is True
    record = json.loads((tmp_path / "facts" / "xpulab_state_demo.fact").read_text())
    assert record["fingerprint"] == "aaa" and list(record["files"]) == [str(owned)]
    rc, result = run(tmp_path, state="record", fingerprint="aaa", files=[str(owned)])
    assert rc == 0 and result["changed"] is False  # same record: no change
    rc, result = run(tmp_path, fingerprint="aaa", files=[str(owned)])
    assert rc == 0 and result["settled"] is True and result["drift"] == [] and result["changed"] is False


def test_new_fingerprint_is_not_settled_and_keeps_the_record(tmp_path: Path, owned: Path) -> None:
    run(tmp_path, state="record", fingerprint="aaa", files=[str(owned)])
    rc, result = run(tmp_path, fingerprint="bbb", files=[str(owned)])
    assert rc == 0 and result["settled"] is False and result["changed"] is False
    assert result["drift"] == ["fingerprint aaa is now bbb"]
    # The probe returns the fingerprint it was given: check.yml records it from there.
    assert (result["fingerprint"], result["recorded"]) == ("bbb", "aaa")
    assert json.loads((tmp_path / "facts" / "xpulab_state_demo.fact").read_text())["fingerprint"] == "aaa"


def test_edited_file_is_drift_and_clears_the_record(tmp_path: Path, owned: Path) -> None:
    run(tmp_path, state="record", fingerprint="aaa", files=[str(owned)])
    owned.write_text("edited by hand\n")
    rc, result = run(tmp_path, fingerprint="aaa", files=[str(owned)])
    assert rc == 0 and result["settled"] is False and result["changed"] is True
    assert result["drift"] == [f"{owned} changed since it was recorded"]
    # A repair that fails half-way must not be taken for a complete run next time.
    rc, result = run(tmp_path, fingerprint="aaa", files=[str(owned)])
    assert result["settled"] is False and result["drift"][0] == "no complete run recorded"


def test_drift_in_check_mode_changes_nothing(tmp_path: Path, owned: Path) -> None:
    run(tmp_path, state="record", fingerprint="aaa", files=[str(owned)])
    owned.unlink()
    rc, result = run(tmp_path, fingerprint="aaa", files=[str(owned)], _ansible_check_mode=True)
    assert rc == 0 and result["settled"] is False and result["changed"] is True
    assert json.loads((tmp_path / "facts" / "xpulab_state_demo.fact").read_text())["fingerprint"] == "aaa"


def test_paths_links_absent(tmp_path: Path) -> None:
    run(tmp_path, state="record", fingerprint="f")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "torch-2.14.1+cu130.dist-info").mkdir()
    (tmp_path / "current").symlink_to("7.1.1")
    (tmp_path / "reboot-required").write_text("")
    args: dict[str, Any] = {
        "fingerprint": "f",
        "paths": [str(tmp_path / "site" / "torch-2.14.1[.+]*dist-info"), str(tmp_path / "site" / "torch-2.14.10*")],
        "links": {str(tmp_path / "current"): "7.1.5", str(tmp_path / "site"): "x"},
        "absent": [str(tmp_path / "reboot-required"), str(tmp_path / "site" / "torchcodec_xpu-*.dist-info")],
    }
    rc, result = run(tmp_path, **args)
    assert rc == 0 and result["settled"] is False
    assert result["drift"] == [
        f"{tmp_path}/site/torch-2.14.10* is missing",
        f"{tmp_path}/reboot-required exists",
        f"{tmp_path}/current points at 7.1.1, not 7.1.5",
        f"{tmp_path}/site is not a symbolic link",
    ]


def test_packages_and_members(tmp_path: Path) -> None:
    run(tmp_path, state="record", fingerprint="f")
    root_group = grp.getgrgid(0).gr_name
    rc, result = run(tmp_path, fingerprint="f", packages=["dpkg", "xpulab-no-such-package", "dpkg=0.0-not-this"],
                     members={"xpulab-no-such-group": ["root"], root_group: ["xpulab-nobody"]})
    assert rc == 0 and result["settled"] is False
    assert result["drift"] == [
        "package xpulab-no-such-package is not installed",
        result["drift"][1],
        f"group {root_group} lacks xpulab-nobody",
        "group xpulab-no-such-group is missing",
    ]
    assert result["drift"][1].startswith("package dpkg is at ") and result["drift"][1].endswith(", not 0.0-not-this")


def test_record_needs_the_owned_files(tmp_path: Path) -> None:
    rc, result = run(tmp_path, state="record", fingerprint="f", files=[str(tmp_path / "absent.conf")])
    assert rc == 1 and "must exist" in result["msg"]
    assert not (tmp_path / "facts" / "xpulab_state_demo.fact").exists()


def test_unreadable_record_counts_as_none(tmp_path: Path) -> None:
    (tmp_path / "facts").mkdir()
    (tmp_path / "facts" / "xpulab_state_demo.fact").write_text("[not, an, object]")
    assert xpulab_state.read_record(str(tmp_path / "facts" / "xpulab_state_demo.fact")) == {}
    (tmp_path / "facts" / "xpulab_state_demo.fact").write_text("{broken")
    rc, result = run(tmp_path, fingerprint="f")
    assert rc == 0 and result["recorded"] is None and result["settled"] is False


def test_tree_digest_follows_names_and_contents(tmp_path: Path) -> None:
    role = tmp_path / "role"
    (role / "tasks").mkdir(parents=True)
    (role / "tasks" / "main.yml").write_text("---\n")
    first = xpulab.tree_digest(str(role))
    (role / "tasks" / "__pycache__").mkdir()
    (role / "tasks" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (role / "tasks" / "y.pyc").write_bytes(b"\0")
    assert xpulab.tree_digest(str(role)) == first  # compiled caches do not count
    (role / "tasks" / "main.yml").write_text("---\n# edited\n")
    second = xpulab.tree_digest(str(role))
    assert second != first
    os.rename(role / "tasks" / "main.yml", role / "tasks" / "other.yml")
    assert xpulab.tree_digest(str(role)) not in (first, second)
    assert xpulab.tree_digest([str(role), str(role)]) != xpulab.tree_digest(str(role))
    with pytest.raises(ValueError, match="is not a directory"):
        xpulab.tree_digest(str(tmp_path / "missing"))


def test_dangling_link_is_a_missing_path(tmp_path: Path) -> None:
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(tmp_path / "gone" / "python3.11")
    run(tmp_path, state="record", fingerprint="aaa")
    rc, result = run(tmp_path, fingerprint="aaa", paths=[str(python), str(tmp_path / "venv" / "bin" / "py*")])
    assert rc == 0 and result["settled"] is False
    assert result["drift"] == [f"{python} is missing", f"{tmp_path}/venv/bin/py* is missing"]


def test_invalidate_clears_the_record_once(tmp_path: Path, owned: Path) -> None:
    run(tmp_path, state="record", fingerprint="aaa", files=[str(owned)])
    rc, result = run(tmp_path, state="invalidate")
    assert rc == 0 and result["changed"] is True
    assert json.loads((tmp_path / "facts" / "xpulab_state_demo.fact").read_text())["fingerprint"] is None
    rc, result = run(tmp_path, state="invalidate")
    assert rc == 0 and result["changed"] is False
    rc, result = run(tmp_path, fingerprint="aaa", files=[str(owned)])
    assert result["settled"] is False and result["drift"][0] == "no complete run recorded"


def test_probe_needs_a_fingerprint(tmp_path: Path) -> None:
    rc, result = run(tmp_path)
    assert rc == 1 and "fingerprint" in result["msg"]


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """An installed tree with a manifest, as the ffmpeg role leaves its release."""
    tree = tmp_path / "release"
    (tree / "lib" / "pkgconfig").mkdir(parents=True)
    (tree / "bin").mkdir()
    (tree / "bin" / "ffmpeg").write_bytes(b"\x7fELF ffmpeg")
    (tree / "bin" / "ffmpeg").chmod(0o755)
    (tree / "lib" / "libavcodec.so.61.19.100").write_bytes(b"\x7fELF avcodec")
    (tree / "lib" / "libavcodec.so.61").symlink_to("libavcodec.so.61.19.100")
    (tree / "lib" / "pkgconfig" / "libavcodec.pc").write_text("Name: libavcodec\n")
    rc, result = run(tmp_path, state="manifest", tree=str(tree), manifest=str(tree / "xpulab-manifest.json"))
    assert rc == 0 and result["changed"], result
    return tree


def verify(tmp_path: Path, tree: Path) -> dict[str, Any]:
    rc, result = run(tmp_path, state="verify", trees={str(tree): str(tree / "xpulab-manifest.json")})
    assert rc == 0, result
    return result


def test_manifest_lists_every_entry_but_itself(tmp_path: Path, release: Path) -> None:
    listing = json.loads((release / "xpulab-manifest.json").read_text())
    assert sorted(listing["files"]) == ["bin/ffmpeg", "lib/libavcodec.so.61.19.100", "lib/pkgconfig/libavcodec.pc"]
    assert listing["files"]["bin/ffmpeg"]["mode"] == "0755"
    assert listing["links"] == {"lib/libavcodec.so.61": "libavcodec.so.61.19.100"}
    assert sorted(listing["dirs"]) == ["bin", "lib", "lib/pkgconfig"]
    rc, again = run(tmp_path, state="manifest", tree=str(release), manifest=str(release / "xpulab-manifest.json"))
    assert rc == 0 and not again["changed"], again
    assert verify(tmp_path, release) == {**verify(tmp_path, release), "settled": True, "drift": []}


@pytest.mark.parametrize(("damage", "said"), [
    (lambda t: (t / "lib" / "libavcodec.so.61.19.100").write_bytes(b"\x7fELF other"),
     "files changed: lib/libavcodec.so.61.19.100"),
    (lambda t: (t / "bin" / "ffmpeg").chmod(0o4755), "files changed: bin/ffmpeg"),
    (lambda t: (t / "lib" / "pkgconfig" / "libavcodec.pc").unlink(), "files missing: lib/pkgconfig/libavcodec.pc"),
    (lambda t: (t / "lib" / "libevil.so").write_bytes(b"x"), "files not in the manifest: lib/libevil.so"),
    (lambda t: ((t / "lib" / "libavcodec.so.61").unlink(), (t / "lib" / "libavcodec.so.61").symlink_to("/tmp/x")),
     "links changed: lib/libavcodec.so.61"),
    (lambda t: (t / "xpulab-manifest.json").unlink(), "xpulab-manifest.json is missing or unreadable"),
])
def test_release_drift_is_found(tmp_path: Path, release: Path, damage: Any, said: str) -> None:
    damage(release)
    result = verify(tmp_path, release)
    assert not result["settled"]
    assert any(said in line for line in result["drift"]), result["drift"]


def test_link_added_by_ldconfig_is_no_drift(tmp_path: Path, release: Path) -> None:
    (release / "lib" / "libavcodec.so").symlink_to("libavcodec.so.61")
    assert verify(tmp_path, release)["settled"]


def test_probe_with_a_tree_clears_the_record_on_drift(tmp_path: Path, release: Path) -> None:
    trees = {str(release): str(release / "xpulab-manifest.json")}
    manifest = str(release / "xpulab-manifest.json")
    assert run(tmp_path, state="record", fingerprint="fp1", files=[manifest])[0] == 0
    rc, result = run(tmp_path, fingerprint="fp1", files=[manifest], trees=trees)
    assert rc == 0 and result["settled"], result
    (release / "bin" / "ffmpeg").write_bytes(b"\x7fELF patched")
    rc, result = run(tmp_path, fingerprint="fp1", files=[manifest], trees=trees)
    assert rc == 0 and not result["settled"] and result["changed"], result
    assert "files changed: bin/ffmpeg" in " ".join(result["drift"])


def test_manifest_in_check_mode_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    rc, result = run(tmp_path, state="manifest", tree=str(tmp_path / "t"), manifest=str(tmp_path / "t" / "m.json"),
                     _ansible_check_mode=True)
    assert rc == 0 and result["changed"] and not (tmp_path / "t" / "m.json").exists()

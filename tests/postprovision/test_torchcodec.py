"""TorchCodec as installed by the torchcodec role."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pytest
from conftest import read_fact


@pytest.fixture(scope="module")
def torchcodec_fact(host: Any) -> dict[str, Any]:
    return read_fact(host, "xpulab_torchcodec")


def venv_python(fact: dict[str, Any]) -> str:
    return f"{fact['venv']}/bin/python"


def probe(host: Any, fact: dict[str, Any]) -> dict[str, Any]:
    script = (
        "import importlib.metadata as m, json, torch, torchcodec\n"
        "def v(d):\n"
        "    try:\n        return m.version(d)\n    except m.PackageNotFoundError:\n        return None\n"
        "x = getattr(torch, 'xpu', None)\n"
        "print(json.dumps({'torchcodec': v('torchcodec'), 'plugin': v('torchcodec-xpu'),"
        " 'xpu': bool(x is not None and x.is_available())}))\n"
    )
    out = host.run(f"{venv_python(fact)} -c {shlex.quote(script)}")
    assert out.rc == 0, out.stderr
    return json.loads(out.stdout)


def test_torchcodec_imports_at_the_recorded_version(host: Any, torchcodec_fact: dict[str, Any]) -> None:
    seen = probe(host, torchcodec_fact)
    assert seen["torchcodec"] == torchcodec_fact["version"]


def test_xpu_plugin_only_where_torch_has_xpu(host: Any, torchcodec_fact: dict[str, Any]) -> None:
    seen = probe(host, torchcodec_fact)
    if torchcodec_fact["method"] != "plugin":
        pytest.skip("source method: no plugin involved")
    assert (seen["plugin"] is not None) == seen["xpu"], seen
    assert torchcodec_fact["xpu_plugin"] == seen["plugin"]


def test_source_build_records_its_commit(host: Any, torchcodec_fact: dict[str, Any]) -> None:
    if torchcodec_fact["method"] != "source":
        pytest.skip("plugin method: installed from an index, no commit")
    assert re.fullmatch(r"[0-9a-f]{40}", torchcodec_fact["commit"] or "")
    assert re.fullmatch(r"[0-9a-f]{16}", torchcodec_fact["fingerprint"] or "")
    seen = probe(host, torchcodec_fact)
    assert torchcodec_fact["enable_xpu"] == seen["xpu"] or not torchcodec_fact["enable_xpu"]


def test_installed_package_has_no_setuid_setgid_or_world_writable_files(host: Any, torchcodec_fact: dict[str, Any]) -> None:
    venv = shlex.quote(torchcodec_fact["venv"])
    unsafe = host.check_output(f"find {venv}/lib/python*/site-packages/torchcodec -perm /6002 ! -type l")
    assert unsafe == "", f"unsafe entries in the installed torchcodec:\n{unsafe}"


def test_source_build_user_is_a_nologin_system_user_for_torchcodec_only(host: Any, torchcodec_fact: dict[str, Any]) -> None:
    user = host.user("xpulab-build-torchcodec")
    if torchcodec_fact["method"] != "source" or not user.exists:
        pytest.skip("no TorchCodec source build on this node (plugin method, or a cached wheel was installed)")
    assert user.shell in ("/usr/sbin/nologin", "/sbin/nologin") and user.uid < 1000
    assert user.home == "/var/lib/xpulab/build/torchcodec"

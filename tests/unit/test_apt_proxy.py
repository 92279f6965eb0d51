"""The apt_proxy role's Jinja: the nodes' apt.conf.d file (parsed by the real
apt-config), apt-cacher-ng's settings file, the controller-side check of
every node's xpulab_apt_proxy_url, the address the role probes, the service
manager it picks, and the sandbox's URL that follows the proxy group.
The role against real containers: tests/apt_proxy/live.sh."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from ansible_templar import ROOT, render, role_files

ROLE = ROOT / "roles" / "apt_proxy"
CLIENT_TEMPLATE = ROLE / "templates" / "apt-proxy.conf.j2"
SERVER_TEMPLATE = ROLE / "templates" / "zzz_xpulab.conf.j2"
SANDBOX_VARS = ROOT / "inventories" / "sandbox" / "group_vars" / "all" / "apt_proxy.yml"
MANAGED = {"ansible_managed": "Ansible managed"}
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))


def client_file(**data: Any) -> str:
    return str(render({"t": CLIENT_TEMPLATE.read_text()}, files=role_files("apt_proxy"),
                      data={**MANAGED, **data})["t"])


def server_file(**data: Any) -> str:
    return str(render({"t": SERVER_TEMPLATE.read_text()}, files=role_files("apt_proxy"),
                      data={**MANAGED, **data})["t"])


def problems(nodes: dict[str, dict[str, Any]]) -> str:
    """__apt_proxy_client_problems for these nodes' hostvars."""
    return str(render({"p": "{{ __apt_proxy_client_problems }}"}, files=role_files("apt_proxy"),
                      data={"groups": {"xpulab_nodes": list(nodes)}, "hostvars": nodes})["p"])


@pytest.mark.skipif(shutil.which("apt-config") is None, reason="needs apt-config (Debian/Ubuntu)")
def test_client_file_is_apt_configuration(tmp_path: Path) -> None:
    conf = tmp_path / "01xpulab-proxy"
    conf.write_text(client_file(xpulab_apt_proxy_url="http://10.0.0.5:3142",
                                apt_proxy_client_direct_hosts=["127.0.0.1", "mirror.lab"]))
    dump = subprocess.run(["apt-config", "-c", str(conf), "dump", "Acquire"], capture_output=True, text=True,
                          check=True).stdout
    assert 'Acquire::http::Proxy "http://10.0.0.5:3142";' in dump
    assert 'Acquire::http::Proxy::127.0.0.1 "DIRECT";' in dump
    assert 'Acquire::http::Proxy::mirror.lab "DIRECT";' in dump
    # apt would tunnel https sources through the http proxy otherwise (apt-transport-https(1)).
    assert 'Acquire::https::Proxy "DIRECT";' in dump


def test_client_file_defaults() -> None:
    text = client_file(xpulab_apt_proxy_url="http://proxy.lab:3142")
    assert [line for line in text.splitlines() if not line.startswith("//")] == [
        'Acquire::http::Proxy "http://proxy.lab:3142";',
        'Acquire::https::Proxy "DIRECT";',
    ]


def test_client_file_https_through_a_proxy() -> None:
    text = client_file(xpulab_apt_proxy_url="http://proxy.lab:3142", apt_proxy_client_https_proxy="http://proxy.lab:3142")
    assert 'Acquire::https::Proxy "http://proxy.lab:3142";' in text


def test_server_file_all_interfaces() -> None:
    lines = [line for line in server_file().splitlines() if not line.startswith("#")]
    assert lines == [
        "CacheDir: /var/cache/apt-cacher-ng",
        "Port: 3142",
        r"PassThroughPattern: ^(bugs\.debian\.org|changelogs\.ubuntu\.com):443$",
    ]


def test_server_file_bound_addresses() -> None:
    text = server_file(apt_proxy_port=3152, apt_proxy_bind_addresses=["127.0.0.1", "::1"],
                       apt_proxy_passthrough_pattern="^$")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines[1:] == ["Port: 3152", "BindAddress: 127.0.0.1 ::1", "PassThroughPattern: ^$"]


def test_server_file_is_read_after_the_packages_own() -> None:
    """apt-cacher-ng reads *.conf of its directory in name order; debconf writes zz_debconf.conf."""
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults["apt_proxy_conf_file"].endswith(".conf")
    assert sorted(["acng.conf", "zz_debconf.conf", defaults["apt_proxy_conf_file"]])[-1] == defaults["apt_proxy_conf_file"]


@pytest.mark.parametrize("url", ["", "http://10.0.0.5:3142", "http://proxy.lab.example/", "http://proxy:80",
                                 "http://[fd00::5]:3142", "http://[::1]", "http://a-b.c:65535"])
def test_good_urls_pass(url: str) -> None:
    assert problems({"n1": {"xpulab_apt_proxy_url": url}, "n2": {}}) == ""


@pytest.mark.parametrize("url", ["https://proxy.lab:3142", "proxy.lab:3142", "http://proxy.lab:3142/acng",
                                 "http://proxy.lab:99999", "http://proxy.lab:0", "http://pro xy:3142",
                                 'http://proxy";x', "http://-proxy:3142", "http://user:pw@proxy:3142", None, 3142])
def test_bad_urls_are_named(url: Any) -> None:
    found = problems({"n1": {"xpulab_apt_proxy_url": "http://ok:3142"}, "n2": {"xpulab_apt_proxy_url": url}})
    assert found.startswith("n2: xpulab_apt_proxy_url "), found
    assert "n1" not in found


@pytest.mark.parametrize(("name", "value"), [
    ("apt_proxy_client_https_proxy", "direct"),
    ("apt_proxy_client_https_proxy", 'http://p";'),
    ("apt_proxy_client_direct_hosts", "127.0.0.1"),
    ("apt_proxy_client_direct_hosts", ["mirror lab"]),
    ("apt_proxy_client_direct_hosts", ['a";b']),
])
def test_bad_client_settings_are_named(name: str, value: Any) -> None:
    found = problems({"n1": {name: value}})
    assert found.startswith(f"n1: {name} "), found


def test_every_bad_node_is_named() -> None:
    found = problems({"a": {"xpulab_apt_proxy_url": "ftp://x"}, "b": {}, "c": {"xpulab_apt_proxy_url": "x"}})
    assert [p.split(":")[0] for p in found.split("; ")] == ["a", "c"]


@pytest.mark.parametrize(("addresses", "url"), [
    ([], "http://127.0.0.1:3142/acng-report.html"),
    (["0.0.0.0"], "http://127.0.0.1:3142/acng-report.html"),
    (["10.0.0.5", "127.0.0.1"], "http://10.0.0.5:3142/acng-report.html"),
    (["::1"], "http://[::1]:3142/acng-report.html"),
])
def test_probe_url(addresses: list[str], url: str) -> None:
    got = render({"u": "{{ __apt_proxy_check_url }}"}, files=role_files("apt_proxy"),
                 data={"apt_proxy_bind_addresses": addresses})
    assert got["u"] == url


@pytest.mark.parametrize(("setting", "service_mgr", "expected"), [
    ("auto", "systemd", "systemd"), ("auto", "sysvinit", "sysvinit"), ("auto", "service", "sysvinit"),
    ("auto", None, "sysvinit"), ("systemd", "sysvinit", "systemd"), ("sysvinit", "systemd", "sysvinit"),
])
def test_service_manager(setting: str, service_mgr: str | None, expected: str) -> None:
    facts = {} if service_mgr is None else {"service_mgr": service_mgr}
    got = render({"m": "{{ __apt_proxy_service_manager }}"}, files=role_files("apt_proxy"),
                 data={"apt_proxy_service_manager": setting, "ansible_facts": facts})
    assert got["m"] == expected


@pytest.mark.parametrize(("groups", "url"), [
    ({}, ""), ({"xpulab_apt_proxy": []}, ""), ({"xpulab_apt_proxy": ["xpulab-apt-proxy"]}, "http://127.0.0.1:3142"),
])
def test_sandbox_nodes_follow_the_proxy_group(groups: dict[str, list[str]], url: str) -> None:
    got = render({"u": "{{ xpulab_apt_proxy_url }}"}, files=[*role_files("apt_proxy"), SANDBOX_VARS],
                 data={"groups": groups})
    assert got["u"] == url


def test_sandbox_url_passes_the_check() -> None:
    url = render({"u": "{{ xpulab_apt_proxy_url }}"}, files=[SANDBOX_VARS],
                 data={"groups": {"xpulab_apt_proxy": ["p"]}})["u"]
    assert problems({"n1": {"xpulab_apt_proxy_url": url, "apt_proxy_client_direct_hosts": ["127.0.0.1"]}}) == ""


def test_specs_match_defaults() -> None:
    """Every default is an option of an entry point, with the same default."""
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options = {name: opt for entry in specs.values() for name, opt in entry["options"].items()}
    assert set(defaults) <= set(options)
    for name, value in defaults.items():
        assert options[name].get("default") == value, name
    assert options["xpulab_apt_proxy_url"]["default"] == ""


def run_playbook(tmp_path: Path, inventory: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "hosts.yml").write_text(inventory)
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return subprocess.run([ANSIBLE_PLAYBOOK, "playbooks/apt_proxy.yml", "-i", str(tmp_path / "hosts.yml")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_bad_url_stops_before_any_host(tmp_path: Path) -> None:
    result = run_playbook(tmp_path, "xpulab_apt_proxy:\n  hosts:\n    cache.example.invalid:\n"
                                    "xpulab_nodes:\n  hosts:\n    gpu1.example.invalid:\n"
                                    "      xpulab_apt_proxy_url: https://cache.example.invalid:3142\n"
                                    "    gpu2.example.invalid: {}\n")
    out = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert "gpu1.example.invalid: xpulab_apt_proxy_url 'https://cache.example.invalid:3142' is not http://HOST[:PORT]" in out
    assert "Nothing was changed." in out
    assert "gpu2.example.invalid: " not in out
    assert "cache.example.invalid : ok=" not in out and "Gathering Facts" not in out


def test_no_proxy_costs_one_skipped_task(tmp_path: Path) -> None:
    """No group xpulab_apt_proxy, no URL: no warning, and the node only skips the client include."""
    result = run_playbook(tmp_path, "xpulab_nodes:\n  hosts:\n    gpu1:\n      ansible_connection: local\n"
                                    f"      ansible_python_interpreter: {sys.executable}\n")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Could not match supplied host pattern" not in result.stderr + result.stdout
    assert re.search(r"^gpu1\s*: ok=1\s+changed=0\s+unreachable=0\s+failed=0\s+skipped=1 ", result.stdout, re.MULTILINE)
    assert "skipping: [gpu1]" in result.stdout

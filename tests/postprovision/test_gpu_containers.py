"""Containers' access to the GPUs, as set up by the gpu_containers role, on any inventory.

The fact checks run everywhere. The spec checks need GPUs: on a node where the
role found none, they check that no spec is left behind and are reported as
skipped with the reason.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from conftest import read_fact

FACT = "xpulab_gpu_containers"
DEVICE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.:-]*[A-Za-z0-9])?$")
# Debian 12's podman 4.3.1 is the oldest podman seen to resolve cdiVersion 0.5.0
# specs (it rejects 0.6.0); older podman vendored CDI libraries from before 0.5.0.
MIN_PODMAN = (4, 3)


@pytest.fixture(scope="module")
def gpu_containers_fact(host: Any) -> dict[str, Any]:
    return read_fact(host, FACT)


@pytest.fixture(scope="module")
def spec(host: Any, gpu_containers_fact: dict[str, Any]) -> dict[str, Any]:
    fact = gpu_containers_fact
    if fact["spec_path"] is None:
        pytest.skip(f"no GPU for containers on this node (gpu set {fact['gpu_set']!r}): "
                    f"the gpu_containers role wrote no CDI spec at {fact['spec_dest']}")
    path = str(fact["spec_path"])
    spec_file = host.file(path)
    assert spec_file.exists, f"the fact names {path} as the CDI spec but it does not exist"
    assert spec_file.mode == 0o644, f"{path} has mode {oct(spec_file.mode)}; runtimes and rootless users read it"
    loaded: dict[str, Any] = yaml.safe_load(spec_file.content_string)  # JSON is YAML too
    return loaded


def test_fact_records_the_devices(gpu_containers_fact: dict[str, Any]) -> None:
    fact = gpu_containers_fact
    for key in ("spec_path", "spec_dest", "hook_path", "kind", "cdi_version", "gpu_set", "devices",
                "qualified_devices", "gpus", "host_by_path_missing", "warnings", "podman_version"):
        assert key in fact, f"{key} missing from the {FACT} fact: {sorted(fact)}"
    assert fact["qualified_devices"] == [f"{fact['kind']}={name}" for name in fact["devices"]]
    if fact["gpus"]:
        assert fact["spec_path"] == fact["spec_dest"]
        assert fact["devices"][-1] == "all"
    else:
        assert (fact["spec_path"], fact["devices"]) == (None, [])


def test_no_spec_is_left_without_gpus(host: Any, gpu_containers_fact: dict[str, Any]) -> None:
    fact = gpu_containers_fact
    if fact["gpus"]:
        pytest.skip(f"the node has {len(fact['gpus'])} GPU(s) for containers; covered by the spec checks")
    assert not host.file(fact["spec_dest"]).exists, (
        f"no GPUs, yet {fact['spec_dest']} exists: a stale spec names device nodes that are gone")


def test_warnings_name_every_gpu_without_by_path_links(gpu_containers_fact: dict[str, Any]) -> None:
    fact = gpu_containers_fact
    for where in fact["host_by_path_missing"]:  # a PCI address, or the render node of a GPU without one
        assert any(where in warning and "/dev/dri/by-path" in warning for warning in fact["warnings"]), (
            f"no warning for {where}: {fact['warnings']}")
    assert len(fact["warnings"]) == len(fact["host_by_path_missing"])


def test_spec_has_one_device_per_gpu_and_all(spec: dict[str, Any], gpu_containers_fact: dict[str, Any]) -> None:
    fact = gpu_containers_fact
    assert spec["kind"] == fact["kind"]
    assert spec["cdiVersion"] == fact["cdi_version"]
    names = [device["name"] for device in spec["devices"]]
    assert names == fact["devices"]
    assert len(names) == len(set(names)), f"duplicate device names: {names}"
    assert all(DEVICE_NAME.match(name) for name in names), names
    indexes = [str(number) for number in range(len(fact["gpus"]))]
    aliases = [gpu["pci_address"] for gpu in fact["gpus"] if gpu["pci_address"]]
    assert names == indexes + aliases + ["all"]


def test_each_device_brings_its_nodes_and_by_path_links(spec: dict[str, Any],
                                                        gpu_containers_fact: dict[str, Any]) -> None:
    """Device nodes, and the role's createContainer hook making the /dev/dri/by-path symlinks."""
    fact = gpu_containers_fact
    devices = {device["name"]: device["containerEdits"] for device in spec["devices"]}
    all_nodes: list[dict[str, str]] = []
    all_links: list[str] = []
    for gpu in fact["gpus"]:
        nodes = [{"path": gpu["render_node"]}] + ([{"path": gpu["card_node"]}] if gpu["card_node"] else [])
        links = [f"/dev/dri/by-path/pci-{gpu['pci_address']}-{kind}=../{node.rsplit('/', 1)[1]}"
                 for kind, node in (("render", gpu["render_node"]), ("card", gpu["card_node"]))
                 if gpu["pci_address"] and node]
        expected: dict[str, Any] = {"deviceNodes": nodes}
        if links:
            expected["hooks"] = [{"hookName": "createContainer", "path": fact["hook_path"],
                                  "args": [fact["hook_path"].rsplit("/", 1)[1], *links]}]
            assert devices[gpu["pci_address"]] == expected
        assert devices[gpu["name"]] == expected
        all_nodes += nodes
        all_links += links
    assert devices["all"]["deviceNodes"] == all_nodes
    assert [hook["args"][1:] for hook in devices["all"].get("hooks", [])] == ([all_links] if all_links else [])


def test_hook_is_installed(host: Any, spec: dict[str, Any], gpu_containers_fact: dict[str, Any]) -> None:
    """A spec naming a missing or unrunnable hook makes every container given a GPU fail to start."""
    hook = host.file(gpu_containers_fact["hook_path"])
    assert hook.exists and hook.is_file, f"{hook.path}, the hook of the CDI spec, is missing"
    assert (hook.user, hook.group, hook.mode) == ("root", "root", 0o755), (hook.user, hook.group, oct(hook.mode))
    interpreter = hook.content_string.splitlines()[0][2:].split()[0]
    assert host.file(interpreter).exists, f"{hook.path} runs with {interpreter}, which the node lacks"


def test_host_nodes_exist(host: Any, spec: dict[str, Any], gpu_containers_fact: dict[str, Any]) -> None:
    """A spec naming a missing node makes every container start fail."""
    dev_root = gpu_containers_fact["dev_root"].rstrip("/")
    for node in next(device for device in spec["devices"] if device["name"] == "all")["containerEdits"]["deviceNodes"]:
        host_path = node.get("hostPath", node["path"])
        where = dev_root + host_path[len("/dev"):]
        target = host.file(where)
        assert target.exists, f"{host_path} of the CDI spec does not exist on the node ({where})"
        if dev_root == "/dev":
            assert target.is_character_device, f"{host_path} is not a character device"


def test_podman_reads_the_spec_version(host: Any, spec: dict[str, Any], gpu_containers_fact: dict[str, Any]) -> None:
    version = gpu_containers_fact["podman_version"]
    if version is None:
        pytest.skip("podman is not installed on this node (gpu_containers_install_podman is false); "
                    "use Docker with CDI enabled or the classic --device flags")
    found = tuple(int(part) for part in version.split(".")[:2])
    assert found >= MIN_PODMAN, (
        f"podman {version} is older than {'.'.join(map(str, MIN_PODMAN))}: it cannot resolve cdiVersion "
        f"{spec['cdiVersion']} specs, so `--device {gpu_containers_fact['kind']}=0` fails on this node")
    assert host.run("podman --version").stdout.split()[-1].startswith(version)

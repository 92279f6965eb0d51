"""Filters shared by the xpulab roles."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def pick_builders(
    hosts: Iterable[str],
    hostvars: Mapping[str, Mapping[str, Any]],
    need_var: str,
    key_var: str,
) -> dict[str, str]:
    """Choose one host per fingerprint among the hosts that need a build.

    Hosts are taken in play order, so the choice is stable between runs:
    the first host whose ``need_var`` is true claims its ``key_var`` value.
    Returns a mapping fingerprint -> builder host.
    """
    builders: dict[str, str] = {}
    for host in hosts:
        hvars = hostvars.get(host, {})
        if not _truthy(hvars.get(need_var, False)):
            continue
        key = hvars.get(key_var)
        if not key:
            raise ValueError(f"host {host} needs a build but has no {key_var}")
        builders.setdefault(str(key), host)
    return builders


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


class FilterModule:
    """Ansible filter plugin entry point."""

    def filters(self) -> dict[str, Any]:
        return {"xpulab_pick_builders": pick_builders}

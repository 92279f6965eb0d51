"""Ask a node in one call whether every role's last complete run still holds (docs: modules/xpulab_node_probe.py)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from ansible.plugins.action import ActionBase  # type: ignore[import-untyped]
from ansible_collections.xpulab.gpu.plugins.filter.xpulab import tree_digest  # type: ignore[import-not-found]

# The collection's root: roles/, plugins/ and playbooks/ are its code.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CODE = ("roles", "plugins", "playbooks")
REASON = ("unchanged since its last complete run (fingerprint {fingerprint}), nothing to do; "
          "the node answered for every role in one call")


def inputs_digest(code: str, variables: Mapping[str, Any], facts: Mapping[str, Any],
                  controller: Mapping[str, Any]) -> str:
    """One digest of what a role's fingerprint may rest on on the controller (the node adds its GPUs)."""
    data = {"code": code, "vars": variables, "facts": facts, "controller": controller}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:32]


def selected(names: Iterable[str], prefixes: Iterable[str], exclude: Iterable[str]) -> list[str]:
    """The variable names that start with a prefix and with no excluded prefix, sorted."""
    wanted, left_out = tuple(prefixes), tuple(exclude)
    return sorted(n for n in names if n.startswith(wanted) and not n.startswith(left_out))


def picked_facts(facts: Mapping[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """The facts named by dotted paths (`env.PATH`); a missing one is None."""
    out: dict[str, Any] = {}
    for path in paths:
        value: Any = facts
        for key in path.split("."):
            value = value.get(key) if isinstance(value, Mapping) else None
        out[path] = value
    return out


def dir_digests(path: str) -> dict[str, str] | str:
    """sha256 of each regular file directly in path, or why there is none."""
    try:
        names = sorted(os.listdir(path))
    except OSError as error:
        return f"unreadable: {error.strerror}"
    out: dict[str, str] = {}
    for name in names:
        full = os.path.join(path, name)
        if os.path.isfile(full):
            with open(full, "rb") as handle:
                out[name] = hashlib.sha256(handle.read()).hexdigest()
    return out


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("roles", "prefixes", "exclude", "facts", "controller_dirs", "gpu_inventory",
                             "lock_path", "holder", "facts_dir"))

    def _defaults(self, roles: Iterable[str]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for role in roles:
            path = os.path.join(ROOT, "roles", role, "defaults", "main.yml")
            if os.path.isfile(path):
                merged.update(self._loader.load_from_file(path) or {})
        return merged

    def _value(self, templar: Any, raw: Any) -> Any:
        try:
            return json.loads(json.dumps(templar.template(raw), sort_keys=True, default=str))
        except Exception as error:  # noqa: BLE001 - a value this run cannot work out yet
            return f"(not resolvable here: {type(error).__name__}) {raw!r}"

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        roles = list(args.get("roles") or [])
        # Role defaults first, the host's variables over them, as a role sees them.
        variables = {**self._defaults(roles), **task_vars}
        templar = self._templar.copy_with_new_env(available_variables=variables)
        names = selected(variables, args.get("prefixes") or [f"{r}_" for r in roles], args.get("exclude") or [])
        values = {name: self._value(templar, variables[name]) for name in names}
        controller = {name: dir_digests(str(self._value(templar, variables.get(name, ""))))
                      for name in args.get("controller_dirs") or []}
        gpu_args = {key: self._value(templar, variables[name])
                    for key, name in (args.get("gpu_inventory") or {}).items() if name in variables}
        digest = inputs_digest(tree_digest([os.path.join(ROOT, d) for d in CODE]), values,
                               picked_facts(task_vars.get("ansible_facts") or {}, args.get("facts") or []),
                               controller)
        probe = self._execute_module(
            module_name="xpulab.gpu.xpulab_state",
            module_args={"state": "node_probe", "inputs": digest, "gpu_inventory": gpu_args,
                         "lock_path": args.get("lock_path"),
                         "holder": args.get("holder") or {},
                         "facts_dir": args.get("facts_dir") or "/etc/ansible/facts.d"},
            task_vars=task_vars)
        if probe.get("failed"):
            return {**result, **probe}
        facts: dict[str, Any] = {"xpulab_node_inputs": digest, "xpulab_node_gpu_inventory": gpu_args,
                                 "xpulab_node_settled": bool(probe["settled"]),
                                 "xpulab_node_reasons": probe["reasons"]}
        if probe["settled"]:
            fingerprints = probe["roles"]
            facts.update(
                xpulab_state_fingerprints=fingerprints,
                xpulab_state_settled={role: True for role in fingerprints},
                xpulab_state_reasons={role: REASON.format(fingerprint=fp) for role, fp in fingerprints.items()})
        result.update(changed=False, settled=probe["settled"], reasons=probe["reasons"], inputs=digest,
                      lock_taken=probe["lock_taken"], ansible_facts=facts)
        return result

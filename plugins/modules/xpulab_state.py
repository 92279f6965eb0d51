#!/usr/bin/python
"""Record what a role left on a node, and tell on the next run whether it still holds."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xpulab_state
short_description: Tell whether a role's last complete run still holds on a node
description:
  - A role that finished a complete run records its fingerprint (a digest of
    its settings, its code and its inputs) and the sha256 of the files it owns
    in the local fact C(/etc/ansible/facts.d/xpulab_state_<name>.fact).
  - On the next run, C(state=probe) compares that record with the node in one
    call; the role skips its tasks only when the fingerprint is the same and
    nothing it checks has drifted.
options:
  name:
    description: Role name; names the fact file (required but for C(manifest), C(node_probe) and C(node_record)).
    type: str
  state:
    description:
      - C(probe) reads and compares (changes nothing unless C(invalidate_on_drift)).
      - C(record) writes the record after a complete run.
      - C(invalidate) clears the recorded fingerprint, so the role runs next
        time (a later role found it broken).
      - C(manifest) writes I(manifest), the list of every entry of I(tree)
        (file sha256 and mode, link target, directory mode), at install time.
      - C(verify) only checks I(trees) (and the other checks), without a record.
      - C(node_record) writes the node record C(xpulab_node.fact) after a run
        in which every role's probe found it settled - the run's I(inputs), and
        per role in I(roles) the checks its probe made and the sha256 of its
        record, and the uid of each user in I(accounts). Bookkeeping, like the
        run lock, never reported as a change.
      - C(node_probe) answers for every role at once. The node is settled when
        the node record's I(inputs) are the ones given, every role's record is
        byte for byte the one the node record names, nothing its checks cover
        has drifted, and every account has its recorded uid. With I(lock_path),
        a settled node's run lock is taken in the same call (and given back
        when the node turns out not settled); a lock held already means not
        settled. Changes nothing else.
    type: str
    choices: [probe, record, invalidate, manifest, verify, node_probe, node_record]
    default: probe
  fingerprint:
    description: The fingerprint of this run (required to probe and record).
    type: str
  files:
    description:
      - Files the role owns. Each must exist, and the probe compares its
        sha256 with the one recorded.
    type: list
    elements: path
    default: []
  paths:
    description: Paths that must exist; shell patterns must match at least one path.
    type: list
    elements: str
    default: []
  absent:
    description: Paths (or shell patterns) that must not exist, e.g. a reboot-required flag.
    type: list
    elements: str
    default: []
  links:
    description: Symbolic links and the target each must point at.
    type: dict
    default: {}
  packages:
    description: Debian packages that must be installed, as C(name) or C(name=version).
    type: list
    elements: str
    default: []
  members:
    description: Groups and the users each must contain.
    type: dict
    default: {}
  trees:
    description:
      - Installed trees and the manifest C(state=manifest) wrote for each
        (tree path -> manifest path). Every file's sha256 and mode, every
        link's target and every directory must be as listed; a regular file
        not listed is drift too (links are not, since ldconfig may add them).
    type: dict
    default: {}
  tree:
    description: The tree to list (C(state=manifest)).
    type: path
  manifest:
    description: Where to write its manifest (C(state=manifest)); left out of the listing.
    type: path
  invalidate_on_drift:
    description:
      - When the fingerprint matches but something drifted, clear the recorded
        fingerprint, so a run that fails while repairing is not taken for a
        complete one next time.
    type: bool
    default: true
  inputs:
    description: Digest of the run's inputs (C(node_probe), C(node_record)).
    type: str
  roles:
    description: Role name -> the checks its probe made in this run (C(node_record)).
    type: dict
    default: {}
  accounts:
    description: User name -> uid (C(node_record)).
    type: dict
    default: {}
  gpu_inventory:
    description:
      - Options of the GPU inventory (C(sysfs_root), C(dev_root), C(kernel_release), as
        M(xpulab.gpu.xpulab_gpu_inventory) takes them); C(node_record) records the
        inventory, C(node_probe) reads it again and compares.
    type: dict
    default: {}
  lock_path:
    description: The node's run lock (a directory) to take when the node is settled (C(node_probe)).
    type: path
  holder:
    description: This run, as the run lock records it (C(node_probe) with I(lock_path)).
    type: dict
    default: {}
  facts_dir:
    description: Directory of the local facts.
    type: path
    default: /etc/ansible/facts.d
notes:
  - Supports check mode.
author:
  - xpulab (@xpulab)
"""

EXAMPLES = r"""
- name: Look for drift since the last complete run
  xpulab_state:
    name: ffmpeg
    fingerprint: "{{ fp }}"
    links:
      /opt/ffmpeg/current: /opt/ffmpeg/7.1.1
    files: [/etc/ld.so.conf.d/xpulab-ffmpeg.conf]
  register: ffmpeg_state_probe
"""

RETURN = r"""
settled:
  description: True when the fingerprint is the recorded one and nothing drifted (C(node_probe) - for every role).
  returned: state=probe or state=node_probe
  type: bool
checks:
  description: The checks this probe made (I(files), I(paths), I(absent), I(links), I(packages), I(members), I(trees)).
  returned: state=probe
  type: dict
reasons:
  description: Why the node is not settled, one sentence each.
  returned: state=node_probe
  type: list
  elements: str
roles:
  description: Each role's recorded fingerprint.
  returned: state=node_probe and settled
  type: dict
lock_taken:
  description: Whether this call took the node's run lock.
  returned: state=node_probe
  type: bool
fingerprint:
  description: The fingerprint probed (the one given).
  returned: state=probe
  type: str
recorded:
  description: The recorded fingerprint, or null.
  returned: always
  type: str
drift:
  description: What differs from the record, one sentence each.
  returned: always
  type: list
  elements: str
"""

import glob
import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]
from ansible_collections.xpulab.gpu.plugins.module_utils.gpu_inventory import inventory  # type: ignore[import-not-found]
from ansible_collections.xpulab.gpu.plugins.module_utils.run_lock import take  # type: ignore[import-not-found]


# The kinds of check a role's probe makes, as module options (main() takes
# them into its argument spec): lists, or dicts for links, members and trees.
CHECK_OPTIONS: dict[str, dict[str, Any]] = {
    "files": {"type": "list", "elements": "path", "default": []},
    "paths": {"type": "list", "elements": "str", "default": []},
    "absent": {"type": "list", "elements": "str", "default": []},
    "links": {"type": "dict", "default": {}},
    "packages": {"type": "list", "elements": "str", "default": []},
    "members": {"type": "dict", "default": {}},
    "trees": {"type": "dict", "default": {}},
}
CHECKS = tuple(CHECK_OPTIONS)
NODE_RECORD = "xpulab_node.fact"


def fact_path(facts_dir: str, name: str) -> str:
    return os.path.join(facts_dir, f"xpulab_state_{name}.fact")


def read_record(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def sha256_of(path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def installed_packages(names: list[str]) -> dict[str, str]:
    """Installed version of each package (absent ones are left out)."""
    if not names:
        return {}
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${Version}\t${db:Status-Status}\n", *names],
        capture_output=True, text=True, check=False,
    )
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2] == "installed":
            found[parts[0]] = parts[1]
    return found


def group_members(group: str) -> set[str] | None:
    try:
        with open("/etc/group", encoding="utf-8") as handle:
            for line in handle:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 4 and fields[0] == group:
                    return {m for m in fields[3].split(",") if m}
    except OSError:
        return None
    return None


def scan_tree(tree: str, skip: str) -> dict[str, dict[str, Any]]:
    """Every entry under `tree` but `skip`: files (sha256, mode), links (target), directories (mode)."""
    listing: dict[str, dict[str, Any]] = {"files": {}, "links": {}, "dirs": {}}
    for root, dirs, files in os.walk(tree):
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            if path == skip:
                continue
            rel, info = os.path.relpath(path, tree), os.lstat(path)
            mode = f"{stat.S_IMODE(info.st_mode):04o}"
            if stat.S_ISLNK(info.st_mode):
                listing["links"][rel] = os.readlink(path)
            elif stat.S_ISDIR(info.st_mode):
                listing["dirs"][rel] = mode
            else:
                digest = sha256_of(path) if stat.S_ISREG(info.st_mode) else "not a regular file"
                listing["files"][rel] = {"sha256": digest, "mode": mode}
    return listing


def tree_drift(tree: str, manifest: str) -> list[str]:
    """How `tree` differs from its manifest, one sentence per kind of difference."""
    wanted = read_record(manifest)
    if not wanted:
        return [f"{manifest} is missing or unreadable"]
    actual = scan_tree(tree, manifest)
    drift: list[str] = []
    for kind in ("files", "links", "dirs"):
        want, have = wanted.get(kind) or {}, actual[kind]
        missing = sorted(set(want) - set(have))
        changed = sorted(k for k in set(want) & set(have) if want[k] != have[k])
        extra = sorted(set(have) - set(want)) if kind == "files" else []
        for what, names in (("missing", missing), ("changed", changed), ("not in the manifest", extra)):
            if names:
                shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
                drift.append(f"{tree}: {kind} {what}: {shown}")
    return drift


def find_drift(params: dict[str, Any], record: dict[str, Any]) -> list[str]:
    """Everything on the node that no longer matches the record."""
    drift: list[str] = []
    recorded_files: dict[str, str] = record.get("files") or {}
    for path in params["files"]:
        digest = sha256_of(path)
        if digest is None:
            drift.append(f"{path} is missing")
        elif recorded_files.get(path) != digest:
            drift.append(f"{path} changed since it was recorded")
    for pattern in params["paths"]:  # a dangling symbolic link is missing too
        if not any(os.path.exists(path) for path in glob.glob(pattern)):
            drift.append(f"{pattern} is missing")
    for pattern in params["absent"]:
        if os.path.lexists(pattern) or glob.glob(pattern):
            drift.append(f"{pattern} exists")
    for link, target in sorted(params["links"].items()):
        try:
            actual = os.readlink(link)
        except OSError:
            drift.append(f"{link} is not a symbolic link")
            continue
        if actual != target:
            drift.append(f"{link} points at {actual}, not {target}")
    wanted = [p.split("=", 1) for p in params["packages"]]
    found = installed_packages([w[0] for w in wanted])
    for entry in wanted:
        version = found.get(entry[0])
        if version is None:
            drift.append(f"package {entry[0]} is not installed")
        elif len(entry) == 2 and version != entry[1]:
            drift.append(f"package {entry[0]} is at {version}, not {entry[1]}")
    for group, users in sorted(params["members"].items()):
        members = group_members(group)
        if members is None:
            drift.append(f"group {group} is missing")
            continue
        missing = sorted(set(users) - members)
        if missing:
            drift.append(f"group {group} lacks {', '.join(missing)}")
    for tree, manifest in sorted(params["trees"].items()):
        drift.extend(tree_drift(tree, manifest))
    return drift


def write_record(path: str, record: dict[str, Any]) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=".xpulab_state.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(json.dumps(record, indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def full_checks(checks: dict[str, Any] | None) -> dict[str, Any]:
    """Every kind of check, empty where none was given."""
    given = checks or {}
    return {k: given.get(k) or ({} if CHECK_OPTIONS[k]["type"] == "dict" else []) for k in CHECKS}


def gpus_now(args: dict[str, Any]) -> dict[str, Any]:
    """What of the GPU inventory a role's result rests on (kernel release, GPUs, problems)."""
    found = inventory(args.get("sysfs_root") or "/sys", args.get("dev_root") or "/dev",
                      args.get("kernel_release") or None)
    return {key: found[key] for key in ("kernel_release", "gpus", "problems")}


def node_record(params: dict[str, Any]) -> dict[str, Any]:
    """The node record: the inputs, each role's checks and record digest, the accounts' uids, the GPUs."""
    roles: dict[str, Any] = {}
    for role, checks in sorted(params["roles"].items()):
        digest = sha256_of(fact_path(params["facts_dir"], role))
        if digest is None:
            raise ValueError(f"{role} has no record in {params['facts_dir']}")
        roles[role] = {"record": digest, "checks": full_checks(checks)}
    return {"inputs": params["inputs"], "roles": roles, "gpus": gpus_now(params["gpu_inventory"]),
            "accounts": {user: int(uid) for user, uid in sorted(params["accounts"].items())}}


def node_reasons(params: dict[str, Any], node: dict[str, Any], quick: bool,
                 fingerprints: dict[str, Any] | None = None) -> list[str]:
    """Why the node record does not answer for every role (`quick`: only what needs no file digest).

    `fingerprints`, where given, gets each role's fingerprint from the record it read.
    """
    if not node:
        return ["no run in which every role was unchanged is recorded"]
    if node.get("inputs") != params["inputs"]:
        return ["the run's inputs (inventory, code, locks, facts) differ from the recorded run's"]
    if node.get("gpus") != gpus_now(params["gpu_inventory"]):
        return ["the GPU inventory differs from the recorded run's"]
    if quick:
        return []
    reasons: list[str] = []
    for role, entry in sorted((node.get("roles") or {}).items()):
        path = fact_path(params["facts_dir"], role)
        if sha256_of(path) != entry.get("record"):
            reasons.append(f"{role}: its record changed since the recorded run")
            continue
        record = read_record(path)
        if fingerprints is not None:
            fingerprints[role] = record.get("fingerprint")
        reasons.extend(f"{role}: {drift}" for drift in find_drift(full_checks(entry.get("checks")), record))
    for user, uid in sorted((node.get("accounts") or {}).items()):
        try:
            actual = pwd.getpwnam(user).pw_uid
        except KeyError:
            reasons.append(f"user {user} is missing")
            continue
        if actual != uid:
            reasons.append(f"user {user} has uid {actual}, not {uid}")
    return reasons


def node_probe(module: AnsibleModule) -> dict[str, Any]:
    """Answer for every role at once; take the run lock of a settled node."""
    params = module.params
    node = read_record(os.path.join(params["facts_dir"], NODE_RECORD))
    result: dict[str, Any] = {"changed": False, "lock_taken": False}
    reasons = node_reasons(params, node, quick=True)
    lock = params["lock_path"] if not module.check_mode else None
    if not reasons and lock:
        # The run lock as xpulab_cache_lock takes it, without waiting or taking
        # over: a held lock is left to the usual path, which names its holder.
        try:
            take(lock, params["holder"], wait=0, delay=1, local_pids=False)
        except TimeoutError:
            reasons = ["another run holds the node's run lock (or left it)"]
        except OSError as error:
            reasons = [f"the run lock {lock} cannot be taken here: {error.strerror}"]
        else:
            result["lock_taken"] = True
    fingerprints: dict[str, Any] = {}
    if not reasons:
        reasons = node_reasons(params, node, quick=False, fingerprints=fingerprints)
    if reasons and result["lock_taken"]:
        shutil.rmtree(lock, ignore_errors=True)
        result["lock_taken"] = False
    result["settled"] = not reasons
    result["reasons"] = reasons
    if not reasons:
        result["roles"] = dict(sorted(fingerprints.items()))
    return result


def run(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    if params["state"] == "node_probe":
        return node_probe(module)
    if params["state"] == "node_record":
        try:
            new = node_record(params)
        except ValueError as error:
            module.fail_json(msg=f"Cannot record the node: {error}")
        path = os.path.join(params["facts_dir"], NODE_RECORD)
        # Bookkeeping, like the run lock: a cache of the proof, never a change.
        result = {"changed": False, "written": new != read_record(path), "path": path}
        if result["written"] and not module.check_mode:
            write_record(path, new)
        return result
    path = fact_path(params["facts_dir"], params["name"])
    record = read_record(path)
    recorded = record.get("fingerprint")
    result: dict[str, Any] = {"changed": False, "recorded": recorded, "path": path}
    if params["state"] == "manifest":
        listing = json.dumps(scan_tree(params["tree"], params["manifest"]), indent=1, sort_keys=True) + "\n"
        try:
            with open(params["manifest"], encoding="utf-8") as handle:
                result["changed"] = handle.read() != listing
        except OSError:
            result["changed"] = True
        if result["changed"] and not module.check_mode:
            handle, tmp = tempfile.mkstemp(dir=os.path.dirname(params["manifest"]), prefix=".manifest.")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(listing)
            os.chmod(tmp, 0o644)
            os.replace(tmp, params["manifest"])
        return result
    if params["state"] == "verify":
        result["drift"] = find_drift(params, record)
        result["settled"] = not result["drift"]
        return result
    if params["state"] == "invalidate":
        result["changed"] = recorded is not None
        if result["changed"] and not module.check_mode:
            write_record(path, {**record, "fingerprint": None})
        return result
    if params["state"] == "record":
        files: dict[str, str] = {}
        for file in params["files"]:
            digest = sha256_of(file)
            if digest is None:
                module.fail_json(msg=f"{file} must exist before the role's run is recorded", **result)
            files[file] = digest
        new = {"fingerprint": params["fingerprint"], "files": files}
        result["changed"] = new != record
        result["drift"] = []
        if result["changed"] and not module.check_mode:
            write_record(path, new)
        return result
    drift = find_drift(params, record)
    if recorded != params["fingerprint"]:
        drift.insert(0, "no complete run recorded" if recorded is None
                     else f"fingerprint {recorded} is now {params['fingerprint']}")
    elif drift and params["invalidate_on_drift"]:
        result["changed"] = True
        if not module.check_mode:
            write_record(path, {**record, "fingerprint": None})
    result["drift"] = drift
    result["settled"] = not drift
    result["fingerprint"] = params["fingerprint"]
    result["checks"] = {k: params[k] for k in CHECKS}
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str"},
            "state": {"type": "str", "choices": ["probe", "record", "invalidate", "manifest", "verify",
                                                 "node_probe", "node_record"],
                      "default": "probe"},
            "fingerprint": {"type": "str"},
            **CHECK_OPTIONS,
            "tree": {"type": "path"},
            "manifest": {"type": "path"},
            "invalidate_on_drift": {"type": "bool", "default": True},
            "inputs": {"type": "str"},
            "roles": {"type": "dict", "default": {}},
            "accounts": {"type": "dict", "default": {}},
            "gpu_inventory": {"type": "dict", "default": {}},
            "lock_path": {"type": "path"},
            "holder": {"type": "dict", "default": {}},
            "facts_dir": {"type": "path", "default": "/etc/ansible/facts.d"},
        },
        required_if=[("state", "probe", ["name", "fingerprint"]), ("state", "record", ["name", "fingerprint"]),
                     ("state", "invalidate", ["name"]), ("state", "verify", ["name"]),
                     ("state", "manifest", ["tree", "manifest"]),
                     ("state", "node_probe", ["inputs"]), ("state", "node_record", ["inputs"])],
        supports_check_mode=True,
    )
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()

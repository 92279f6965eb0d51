#!/usr/bin/python
"""List the OpenPGP keys of a key file, or install one pinned key as an apt keyring."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]

DOCUMENTATION = r"""
---
module: oneapi_keyring
short_description: Read the fingerprints of an OpenPGP key file; install one pinned key as an apt keyring
description:
  - Without O(dest), a read-only probe. Runs C(gpg --show-keys --with-colons)
    on O(src) and returns its primary keys (fingerprint, validity, creation,
    expiry, user IDs). Never changes anything, also outside check mode.
  - With O(dest) and O(fingerprint), imports O(src) into a throwaway GnuPG home,
    exports only the key with that fingerprint (binary, i.e. dearmored) and
    writes it to O(dest) when its content differs. Fails, writing nothing,
    when O(src) has no such key. Other keys in the file (Intel's file also holds
    expired and pre-production keys) are not trusted.
  - gpg runs with a temporary C(--homedir) and C(--no-autostart), so no
    C(~/.gnupg) is created and no gpg-agent is needed (Debian package C(gpg)).
options:
  src:
    description: Key file, ASCII-armored or binary.
    type: path
    required: true
  fingerprint:
    description: Pinned fingerprint (40 or 64 hex digits, any case, spaces allowed). Required with O(dest).
    type: str
  dest:
    description: Keyring to write, for example C(/usr/share/keyrings/oneapi-archive-keyring.gpg).
    type: path
extends_documentation_fragment:
  - ansible.builtin.files
notes:
  - Supports check mode.
author:
  - xpulab
"""

EXAMPLES = r"""
- name: Read the fingerprints of the downloaded key
  oneapi_keyring:
    src: /var/cache/xpulab/oneapi/GPG-PUB-KEY-INTEL-SW-PRODUCTS.PUB
  register: keys

- name: Install only the pinned key
  oneapi_keyring:
    src: /var/cache/xpulab/oneapi/GPG-PUB-KEY-INTEL-SW-PRODUCTS.PUB
    fingerprint: E9BF0AFC46D6E8B7DA5882F1BAC6F0C353D04109
    dest: /usr/share/keyrings/oneapi-archive-keyring.gpg
    mode: "0644"
"""

RETURN = r"""
keys:
  description: Primary keys in O(src), in file order.
  returned: always
  type: list
  elements: dict
  contains:
    fingerprint: {description: Upper-case hex fingerprint., type: str}
    validity: {description: "gpg's validity letter: C(e) expired, C(r) revoked, C(-) unknown.", type: str}
    created: {description: Creation time, seconds since the epoch., type: int}
    expires: {description: Expiry time, seconds since the epoch; null when it never expires., type: int}
    expired: {description: Expired now (by gpg's validity or by the expiry time)., type: bool}
    revoked: {description: Revoked., type: bool}
    uids: {description: User IDs., type: list, elements: str}
fingerprints:
  description: Fingerprints of the primary keys in O(src).
  returned: always
  type: list
  elements: str
"""


def normalize_fingerprint(value: str) -> str:
    return "".join(value.split()).upper()


def parse_colons(text: str, now: float | None = None) -> list[dict[str, Any]]:
    """Primary keys from `gpg --with-colons` output (pub records and their
    fpr and uid records; subkeys are skipped)."""
    now = time.time() if now is None else now
    keys: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    in_primary = False
    for line in text.splitlines():
        fields = line.split(":")
        kind = fields[0]
        if kind == "pub":
            fields += [""] * (7 - len(fields))
            validity = fields[1]
            expires = int(fields[6]) if fields[6].isdigit() else None
            current = {
                "fingerprint": "",
                "validity": validity,
                "created": int(fields[5]) if fields[5].isdigit() else None,
                "expires": expires,
                "expired": validity == "e" or (expires is not None and expires <= now),
                "revoked": validity == "r",
                "uids": [],
            }
            keys.append(current)
            in_primary = True
        elif kind in ("sub", "ssb"):
            in_primary = False
        elif kind == "fpr" and in_primary and current is not None and not current["fingerprint"]:
            current["fingerprint"] = fields[9].upper() if len(fields) > 9 else ""
        elif kind == "uid" and current is not None and len(fields) > 9:
            current["uids"].append(fields[9])
    return keys


class GpgError(Exception):
    pass


class TempGpg:
    """gpg on a throwaway home directory, removed on exit."""

    def __init__(self, gpg: str) -> None:
        self.gpg = gpg
        self.home = ""

    def __enter__(self) -> TempGpg:
        self.home = tempfile.mkdtemp(prefix="xpulab-gpg.")
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.home, ignore_errors=True)

    def run(self, *args: str) -> bytes:
        cmd = [self.gpg, "--batch", "--no-tty", "--no-options", "--no-autostart",
               "--homedir", self.home, *args]
        proc = subprocess.run(cmd, capture_output=True, check=False)
        if proc.returncode != 0:
            raise GpgError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout


def list_keys(gpg: str, src: str) -> list[dict[str, Any]]:
    with TempGpg(gpg) as g:
        return parse_colons(g.run("--with-colons", "--fixed-list-mode", "--show-keys", src).decode(errors="replace"))


def export_key(gpg: str, src: str, fingerprint: str) -> bytes:
    """The binary keyring holding only the key `fingerprint` from `src`."""
    with TempGpg(gpg) as g:
        g.run("--quiet", "--import", src)
        data = g.run("--export", fingerprint)
        path = os.path.join(g.home, "exported.gpg")
        with open(path, "wb") as handle:
            handle.write(data)
        got = [k["fingerprint"] for k in parse_colons(
            g.run("--with-colons", "--fixed-list-mode", "--show-keys", path).decode(errors="replace"))]
    if got != [fingerprint]:
        raise GpgError(f"exporting {fingerprint} from {src} gave keys {got}")
    return data


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "src": {"type": "path", "required": True},
            "fingerprint": {"type": "str"},
            "dest": {"type": "path"},
        },
        required_by={"dest": ["fingerprint"]},
        add_file_common_args=True,
        supports_check_mode=True,
    )
    src: str = module.params["src"]
    dest: str | None = module.params["dest"]
    gpg = module.get_bin_path("gpg", required=True)
    if not os.path.isfile(src):
        module.fail_json(msg=f"{src} does not exist")
    try:
        keys = list_keys(gpg, src)
    except GpgError as exc:
        module.fail_json(msg=f"cannot read OpenPGP keys from {src}: {exc}")
    fingerprints = [k["fingerprint"] for k in keys]
    result: dict[str, Any] = {"changed": False, "keys": keys, "fingerprints": fingerprints}
    if dest is None:
        module.exit_json(**result)

    pinned = normalize_fingerprint(module.params["fingerprint"])
    if pinned not in fingerprints:
        module.fail_json(msg=f"{src} has no key with fingerprint {pinned} (it has: {', '.join(fingerprints) or 'none'})",
                         **result)
    try:
        data = export_key(gpg, src, pinned)
    except GpgError as exc:
        module.fail_json(msg=str(exc), **result)
    current = b""
    if os.path.exists(dest):
        with open(dest, "rb") as handle:
            current = handle.read()
    result["dest"] = dest
    if current != data:
        result["changed"] = True
        if not module.check_mode:
            fd, tmp = tempfile.mkstemp(prefix=".oneapi_keyring.", dir=os.path.dirname(dest) or ".")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            module.atomic_move(tmp, dest)
    file_args = module.load_file_common_arguments(module.params, path=dest)
    if os.path.exists(dest):
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()

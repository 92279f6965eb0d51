#!/usr/bin/python
"""List the OpenPGP keys of a key file, check a pinned one, install it alone as an apt keyring."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xpulab_apt_keyring
short_description: Check an OpenPGP key file against a pinned fingerprint; install that key alone as an apt keyring
description:
  - Runs C(gpg --show-keys --with-colons) on O(src) and returns its primary
    keys (fingerprint, validity, creation, expiry, user IDs).
  - With O(fingerprint), fails unless O(src) holds that key unexpired and
    unrevoked. Without O(dest) this is a read-only check, also outside check mode.
  - With O(dest), imports O(src) into a throwaway GnuPG home, exports only the
    pinned key (binary, i.e. dearmored) and writes it to O(dest) when its
    content differs; other keys in the file are never trusted. Fails, writing
    nothing, when the pinned key is missing, expired or revoked.
  - gpg runs with a temporary C(--homedir) and C(--no-autostart), so no
    C(~/.gnupg) is created and no gpg-agent is needed (Debian package C(gpg)).
version_added: 1.0.0
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
attributes:
  check_mode: {support: full, description: Reports the change O(dest) would get without writing it.}
  diff_mode: {support: none, description: No diff.}
  platform: {support: full, platforms: posix, description: Needs gpg.}
author:
  - xpulab (@xpulab)
"""

EXAMPLES = r"""
- name: Check the downloaded key against the pinned fingerprint (read-only)
  xpulab.gpu.xpulab_apt_keyring:
    src: /var/cache/xpulab/oneapi/GPG-PUB-KEY-INTEL-SW-PRODUCTS.PUB
    fingerprint: E9BF0AFC46D6E8B7DA5882F1BAC6F0C353D04109

- name: Install only the pinned key
  xpulab.gpu.xpulab_apt_keyring:
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
    created: {description: "Creation time, seconds since the epoch.", type: int}
    expires: {description: "Expiry time, seconds since the epoch; null when it never expires.", type: int}
    expired: {description: Expired now (by gpg's validity or by the expiry time)., type: bool}
    revoked: {description: Revoked., type: bool}
    uids: {description: User IDs., type: list, elements: str}
fingerprints:
  description: Fingerprints of the primary keys in O(src).
  returned: always
  type: list
  elements: str
"""

import os
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.xpulab.gpu.plugins.module_utils.openpgp import (
    GpgError, export_key, list_keys, normalize_fingerprint, pinned_problem)


def main() -> None:
    module = AnsibleModule(
        argument_spec={"src": {"type": "path", "required": True}, "fingerprint": {"type": "str"},
                       "dest": {"type": "path"}},
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
    result: dict[str, Any] = {"changed": False, "keys": keys, "fingerprints": [k["fingerprint"] for k in keys]}
    if module.params["fingerprint"] is None:
        module.exit_json(**result)
    pinned = normalize_fingerprint(module.params["fingerprint"])
    problem = pinned_problem(keys, pinned, src)
    if problem:
        module.fail_json(msg=f"{problem}; nothing was trusted" + (f" ({dest} not written)" if dest else ""), **result)
    if dest is None:
        module.exit_json(**result)
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
            fd, tmp = tempfile.mkstemp(prefix=".xpulab_apt_keyring.", dir=os.path.dirname(dest) or ".")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            module.atomic_move(tmp, dest)
    if os.path.exists(dest):
        file_args = module.load_file_common_arguments(module.params, path=dest)
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()

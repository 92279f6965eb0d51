"""Run as the decode user: print its account and what it can open, as JSON.

Arguments: the device root (its dri/renderD* are checked), then render nodes
that must be there (those of the media GPUs). Read-only.
"""
from __future__ import annotations

import glob
import grp
import json
import os
import pwd
import sys


def main(dev_root: str, required: list[str]) -> dict[str, object]:
    account = pwd.getpwuid(os.getuid())
    groups = sorted({grp.getgrgid(gid).gr_name for gid in {os.getgid(), *os.getgroups()}})
    nodes = sorted(set(glob.glob(dev_root + "/dri/renderD*")) | set(required))
    return {
        "uid": account.pw_uid,
        "home": account.pw_dir,
        "groups": groups,
        "home_writable": os.path.isdir(account.pw_dir) and os.access(account.pw_dir, os.W_OK),
        "nodes": {node: os.access(node, os.R_OK | os.W_OK) for node in nodes},
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2:])))

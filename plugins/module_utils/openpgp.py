"""OpenPGP key pinning for apt keyrings: the one implementation every role uses.

gpg runs on a throwaway ``--homedir`` with ``--no-autostart``, so no
``~/.gnupg`` appears and no gpg-agent is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from typing import Any


class GpgError(Exception):
    """gpg failed, or gave other keys than asked for."""


def normalize_fingerprint(value: Any) -> str:
    """'e9bf 0afc...' or '0xE9BF...' -> 'E9BF0AFC...'; anything else as upper-case text."""
    text = "".join(("" if value is None else str(value)).replace(":", "").split()).upper()
    return text[2:] if text.startswith("0X") else text


def parse_colons(text: str, now: float | None = None) -> list[dict[str, Any]]:
    """Primary keys (pub or sec records, with their fpr and uid records) in
    ``gpg --with-colons`` output, in file order; subkeys are skipped."""
    now = time.time() if now is None else now
    keys: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    in_primary = False
    for line in text.splitlines():
        fields = line.split(":")
        kind = fields[0]
        if kind in ("pub", "sec"):
            fields += [""] * (7 - len(fields))
            expires = int(fields[6]) if fields[6].isdigit() else None
            current = {
                "fingerprint": "",
                "validity": fields[1],
                "created": int(fields[5]) if fields[5].isdigit() else None,
                "expires": expires,
                "expired": fields[1] == "e" or (expires is not None and expires <= now),
                "revoked": fields[1] == "r",
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


def pinned_problem(keys: list[dict[str, Any]], pinned: str, src: str) -> str | None:
    """Why the key `pinned` of `src` must not be trusted (missing, expired, revoked), or None."""
    found = [k for k in keys if k["fingerprint"] == pinned]
    if not found:
        have = ", ".join(k["fingerprint"] for k in keys) or "no OpenPGP key"
        return f"{src} has no key with the pinned fingerprint {pinned} (it has: {have})"
    key = found[0]
    if key["revoked"]:
        return f"the pinned key {pinned} in {src} is revoked"
    if key["expired"]:
        when = time.strftime("%Y-%m-%d", time.gmtime(key["expires"])) if key["expires"] else "(gpg says expired)"
        return f"the pinned key {pinned} in {src} expired on {when}"
    return None


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
        cmd = [self.gpg, "--batch", "--no-tty", "--no-options", "--no-autostart", "--homedir", self.home, *args]
        proc = subprocess.run(cmd, capture_output=True, check=False)
        if proc.returncode != 0:
            raise GpgError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout

    def show(self, path: str) -> list[dict[str, Any]]:
        return parse_colons(self.run("--with-colons", "--fixed-list-mode", "--show-keys", path).decode(errors="replace"))


def list_keys(gpg: str, src: str) -> list[dict[str, Any]]:
    """The primary keys of the key file `src` (armored or binary)."""
    with TempGpg(gpg) as g:
        return g.show(src)


def export_key(gpg: str, src: str, fingerprint: str) -> bytes:
    """A binary (dearmored) keyring holding only the key `fingerprint` of `src`."""
    with TempGpg(gpg) as g:
        g.run("--quiet", "--import", src)
        data = g.run("--export", fingerprint)
        path = os.path.join(g.home, "exported.gpg")
        with open(path, "wb") as handle:
            handle.write(data)
        got = [k["fingerprint"] for k in g.show(path)]
    if got != [fingerprint]:
        raise GpgError(f"exporting {fingerprint} from {src} gave keys {got}")
    return data

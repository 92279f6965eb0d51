"""Unit tests for plugins/modules/xpulab_apt_keyring.py and plugins/module_utils/openpgp.py
(the one key-pinning implementation of the intel_gpu and oneapi roles), with real gpg and throwaway keys."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import module_runner
import pytest
from ansible_collections.xpulab.gpu.plugins.module_utils import openpgp

pytestmark = pytest.mark.skipif(not (shutil.which("gpg") and shutil.which("gpg-agent")),
                                reason="needs gnupg (gpg, gpg-agent) to make test keys")

INTEL = "1C1B89D02C929514698AA8059B10C065DBB72B06"
DEBIAN_12 = "4D64FEC119C2029067D6E791F8D2585B8783D481"
# `gpg --show-keys --with-colons` of Intel's intel-graphics.key (gpg 2.2.40), then Debian 12's release key.
TWO_KEYS_COLONS = """\
pub:-:2048:1:9B10C065DBB72B06:1598545209:::-:::scESC::::::23::0:
fpr:::::::::1C1B89D02C929514698AA8059B10C065DBB72B06:
uid:-::::1598545209::EFFC2039CF982E670EFDA4473A2C1169C88A989F::Intel Corporation (repositories.intel.com key) <graphics-support@intel.com>::::::::::0:
sub:-:2048:1:DCA3C02757BFDC7F:1598545209::::::e::::::23:
fpr:::::::::853C36C5C3A5EA57D57EFB14DCA3C02757BFDC7F:
pub:-:255:22:F8D2585B8783D481:1674492243:1926780243::-:::scSC:::::ed25519:::0:
fpr:::::::::4D64FEC119C2029067D6E791F8D2585B8783D481:
uid:-::::1674492243::F511AE250D42128C160F8195C731AFD9683AA6CB::Debian Stable Release Key (12/bookworm) <debian-release@lists.debian.org>::::::::::0:
"""


def gpg(home: Path, *args: str) -> bytes:
    return subprocess.run(["gpg", "--batch", "--no-tty", "--homedir", str(home), *args],
                          capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A key file like Intel's: a current key, an expired one; and a stranger's key."""
    base = tmp_path_factory.mktemp("keys")
    home = base / "home"
    home.mkdir(mode=0o700)
    common = ("--passphrase", "", "--pinentry-mode", "loopback", "--quick-generate-key")
    gpg(home, *common, "Current Products Key <current@example.invalid>", "ed25519", "sign", "never")
    gpg(home, "--faked-system-time", "20200101T000000", *common,
        "Old Products Key <old@example.invalid>", "ed25519", "sign", "1y")
    other_home = base / "other"
    other_home.mkdir(mode=0o700)
    gpg(other_home, *common, "Someone Else <else@example.invalid>", "ed25519", "sign", "never")

    def fpr(h: Path, uid: str) -> str:
        for line in gpg(h, "--with-colons", "--list-keys", uid).decode().splitlines():
            if line.startswith("fpr:"):
                return line.split(":")[9]
        raise AssertionError(uid)

    current = fpr(home, "current@example.invalid")
    old = fpr(home, "old@example.invalid")
    stranger = fpr(other_home, "else@example.invalid")
    bundle = base / "PRODUCTS.PUB"
    bundle.write_bytes(gpg(home, "--armor", "--export", old, current))
    other = base / "OTHER.PUB"
    other.write_bytes(gpg(other_home, "--export", stranger))  # binary, not armored
    for h in (home, other_home):
        subprocess.run(["gpgconf", "--homedir", str(h), "--kill", "gpg-agent"], capture_output=True, check=False)
    return {"bundle": bundle, "other": other, "current": current, "old": old, "stranger": stranger}


def run_module(tmp_path: Path, args: dict[str, Any], check_mode: bool = False) -> tuple[int, dict[str, Any]]:
    """Run the module file as Ansible does without AnsiballZ, with a HOME of its own."""
    if check_mode:
        args = {**args, "_ansible_check_mode": True}
    return module_runner.run_module("xpulab_apt_keyring", tmp_path, args, env={"HOME": str(tmp_path / "fakehome")})


def test_parse_colons_reads_primary_keys_only() -> None:
    text = "\n".join([
        "pub:-:2048:1:36B9569B3F1A1BC7:1564099200:1690329600::-:::sc::::::23::0:",
        "fpr:::::::::E1BA4ECEFB0656C61BF9794936B9569B3F1A1BC7:",
        "uid:e::::1564099200::H::KEY-PIDT-PGP-20190726::::::::::0:",
        "pub:-:2048:1:BAC6F0C353D04109:1692576000:1818806400::-:::sc::::::23::0:",
        "fpr:::::::::E9BF0AFC46D6E8B7DA5882F1BAC6F0C353D04109:",
        "uid:-::::1692576000::H::CN=Intel(R) Software Development Products::::::::::0:",
        "sub:-:2048:1:1111111111111111:1692576000::::::e::::::23:",
        "fpr:::::::::AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:",
        "pub:r:2048:1:2222222222222222:1600000000:::-:::sc::::::23::0:",
        "fpr:::::::::bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:",
    ])
    parsed = openpgp.parse_colons(text, now=1764115200)  # 2025-11-26
    assert [k["fingerprint"] for k in parsed] == [
        "E1BA4ECEFB0656C61BF9794936B9569B3F1A1BC7",
        "E9BF0AFC46D6E8B7DA5882F1BAC6F0C353D04109",
        "B" * 40,
    ]
    old, intel, revoked = parsed
    assert old["expired"] is True and old["revoked"] is False  # expiry time passed
    assert intel["expired"] is False and intel["expires"] == 1818806400
    assert intel["uids"] == ["CN=Intel(R) Software Development Products"]
    assert revoked["revoked"] is True and revoked["expires"] is None


@pytest.mark.parametrize("given", [INTEL, INTEL.lower(), "1C1B 89D0 2C92 9514 698A  A805 9B10 C065 DBB7 2B06",
                                   "0x" + INTEL, "1C:1B:89:D0:2C:92:95:14:69:8A:A8:05:9B:10:C0:65:DB:B7:2B:06"])
def test_normalize_fingerprint(given: str) -> None:
    assert openpgp.normalize_fingerprint(given) == INTEL
    assert openpgp.normalize_fingerprint(" e9bf 0afc46d6\te8b7 ") == "E9BF0AFC46D6E8B7"
    assert openpgp.normalize_fingerprint(None) == ""


def test_every_primary_key_of_a_file_is_listed_subkeys_are_not() -> None:
    keys = openpgp.parse_colons(TWO_KEYS_COLONS, now=1764115200)
    assert [k["fingerprint"] for k in keys] == [INTEL, DEBIAN_12]
    assert keys[0]["expires"] is None and not keys[0]["expired"]
    assert openpgp.parse_colons("") == []
    assert [k["fingerprint"] for k in openpgp.parse_colons("sec:u:255:22:AA:1::::::\nfpr:::::::::abcdef:")] == ["ABCDEF"]


def test_pinned_problem_names_what_is_wrong() -> None:
    keys = openpgp.parse_colons(TWO_KEYS_COLONS, now=1764115200)
    assert openpgp.pinned_problem(keys, INTEL, "k.asc") is None
    missing = openpgp.pinned_problem(keys, "0" * 40, "k.asc")
    assert missing == f"k.asc has no key with the pinned fingerprint {'0' * 40} (it has: {INTEL}, {DEBIAN_12})"
    expired = openpgp.parse_colons(TWO_KEYS_COLONS, now=1926780243)  # Debian 12's key expiry
    assert openpgp.pinned_problem(expired, DEBIAN_12, "k.asc") == f"the pinned key {DEBIAN_12} in k.asc expired on 2031-01-21"
    revoked = [{**keys[0], "revoked": True}]
    assert openpgp.pinned_problem(revoked, INTEL, "k.asc") == f"the pinned key {INTEL} in k.asc is revoked"
    assert "no OpenPGP key" in str(openpgp.pinned_problem([], INTEL, "k.asc"))


def test_probe_lists_keys_and_changes_nothing(tmp_path: Path, keys: dict[str, Any]) -> None:
    rc, result = run_module(tmp_path, {"src": str(keys["bundle"])})
    assert rc == 0, result
    assert result["changed"] is False
    assert sorted(result["fingerprints"]) == sorted([keys["old"], keys["current"]])
    by_fpr = {k["fingerprint"]: k for k in result["keys"]}
    assert by_fpr[keys["old"]]["expired"] is True
    assert by_fpr[keys["current"]]["expired"] is False
    assert by_fpr[keys["current"]]["uids"] == ["Current Products Key <current@example.invalid>"]
    # gpg ran on a throwaway home: no ~/.gnupg appeared.
    assert not (tmp_path / "fakehome" / ".gnupg").exists()


def test_installs_only_the_pinned_key_then_is_idempotent(tmp_path: Path, keys: dict[str, Any]) -> None:
    dest = tmp_path / "oneapi-archive-keyring.gpg"
    pinned = keys["current"].lower()[:20] + " " + keys["current"][20:]
    args = {"src": str(keys["bundle"]), "fingerprint": pinned, "dest": str(dest), "mode": "0644"}

    rc, result = run_module(tmp_path, args, check_mode=True)
    assert rc == 0 and result["changed"] is True and not dest.exists()

    rc, result = run_module(tmp_path, args)
    assert rc == 0 and result["changed"] is True, result
    assert dest.stat().st_mode & 0o777 == 0o644
    assert not dest.read_bytes().startswith(b"-----BEGIN"), "keyring must be binary (dearmored)"
    rc, probe = run_module(tmp_path, {"src": str(dest)})
    assert probe["fingerprints"] == [keys["current"]]

    rc, result = run_module(tmp_path, args)
    assert rc == 0 and result["changed"] is False

    dest.chmod(0o600)
    rc, result = run_module(tmp_path, args)
    assert rc == 0 and result["changed"] is True and dest.stat().st_mode & 0o777 == 0o644


def test_replaces_a_keyring_holding_another_key(tmp_path: Path, keys: dict[str, Any]) -> None:
    dest = tmp_path / "keyring.gpg"
    run_module(tmp_path, {"src": str(keys["other"]), "fingerprint": keys["stranger"], "dest": str(dest)})
    rc, result = run_module(tmp_path, {"src": str(keys["bundle"]), "fingerprint": keys["current"], "dest": str(dest)})
    assert rc == 0 and result["changed"] is True
    assert run_module(tmp_path, {"src": str(dest)})[1]["fingerprints"] == [keys["current"]]


def test_wrong_fingerprint_fails_and_writes_nothing(tmp_path: Path, keys: dict[str, Any]) -> None:
    dest = tmp_path / "keyring.gpg"
    rc, result = run_module(tmp_path, {"src": str(keys["other"]), "fingerprint": keys["current"], "dest": str(dest)})
    assert rc != 0 and result["failed"] is True
    assert keys["current"] in result["msg"] and keys["stranger"] in result["msg"]
    assert not dest.exists()
    assert not list(tmp_path.glob(".xpulab_apt_keyring.*"))


def test_expired_pinned_key_is_refused(tmp_path: Path, keys: dict[str, Any]) -> None:
    dest = tmp_path / "keyring.gpg"
    for args in ({"src": str(keys["bundle"]), "fingerprint": keys["old"]},
                 {"src": str(keys["bundle"]), "fingerprint": keys["old"], "dest": str(dest)}):
        rc, result = run_module(tmp_path, args)
        assert rc != 0 and f"the pinned key {keys['old']}" in result["msg"] and "expired on 2020-12-31" in result["msg"]
    assert not dest.exists()


def test_fingerprint_without_dest_only_checks(tmp_path: Path, keys: dict[str, Any]) -> None:
    rc, result = run_module(tmp_path, {"src": str(keys["bundle"]), "fingerprint": keys["current"]})
    assert rc == 0 and result["changed"] is False and "dest" not in result
    rc, result = run_module(tmp_path, {"src": str(keys["other"]), "fingerprint": keys["current"]})
    assert rc != 0 and keys["stranger"] in result["msg"] and "nothing was trusted" in result["msg"]


def test_unreadable_key_file_fails(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pub"
    junk.write_text("not a key\n")
    rc, result = run_module(tmp_path, {"src": str(junk)})
    # gpg reads no key from it: either an error or an empty list, never a key.
    assert (rc != 0 and "cannot read OpenPGP keys" in result["msg"]) or result["fingerprints"] == []
    rc, result = run_module(tmp_path, {"src": str(tmp_path / "missing.pub")})
    assert rc != 0 and "does not exist" in result["msg"]


def test_dest_requires_fingerprint(tmp_path: Path, keys: dict[str, Any]) -> None:
    rc, result = run_module(tmp_path, {"src": str(keys["bundle"]), "dest": str(tmp_path / "k.gpg")})
    assert rc != 0 and "fingerprint" in result["msg"]

"""oneAPI Deep Learning Essentials as installed (or skipped) by the oneapi role.

Reads the local fact xpulab_oneapi. When the role skipped oneAPI on a host,
every check here is skipped with the recorded reason; when it installed it,
the package, the pinned keyring, the apt source and setvars.sh are checked.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from conftest import read_fact

CLEAN_ENV = "env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.fixture(scope="module")
def oneapi_fact(host: Any) -> dict[str, Any]:
    fact = read_fact(host, "xpulab_oneapi")
    if not fact.get("installed"):
        pytest.skip(f"oneAPI was not installed on this host: {fact.get('reason') or 'no reason recorded'}")
    return fact


def sourced_env(host: Any, setvars: str) -> dict[str, str]:
    """The environment after sourcing setvars.sh in a clean shell."""
    script = f'. {shlex.quote(setvars)} >/dev/null 2>&1 || exit 3; env'
    out = host.run(f"{CLEAN_ENV} bash --noprofile --norc -c {shlex.quote(script)}")
    assert out.rc == 0, f"sourcing {setvars} failed (exit {out.rc}): {out.stderr}"
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def test_package_installed_at_recorded_version(host: Any, oneapi_fact: dict[str, Any]) -> None:
    assert oneapi_fact["package"].endswith(f"-{oneapi_fact['version']}"), oneapi_fact
    package = host.package(oneapi_fact["package"])
    assert package.is_installed, f"{oneapi_fact['package']} is not installed"
    assert package.version == oneapi_fact["package_version"]


def test_keyring_holds_only_the_pinned_key(host: Any, oneapi_fact: dict[str, Any]) -> None:
    keyring = host.file(oneapi_fact["keyring"])
    assert keyring.is_file, f"{oneapi_fact['keyring']} is missing"
    assert keyring.user == "root" and keyring.mode == 0o644
    home = host.check_output("mktemp -d")
    try:
        out = host.check_output(
            f"gpg --batch --no-options --no-autostart --homedir {home} --with-colons --fixed-list-mode "
            f"--show-keys {shlex.quote(oneapi_fact['keyring'])}"
        )
    finally:
        host.run(f"rm -rf {home}")
    lines = [line.split(":") for line in out.splitlines()]
    primaries = [fields[9] for prev, fields in zip(lines, lines[1:]) if prev[0] == "pub" and fields[0] == "fpr"]
    assert primaries == [oneapi_fact["key_fingerprint"]]


def test_apt_source_is_signed_by_the_keyring(host: Any, oneapi_fact: dict[str, Any]) -> None:
    sources = host.file(oneapi_fact["sources_file"])
    assert sources.is_file, f"{oneapi_fact['sources_file']} is missing"
    fields = dict(
        line.split(": ", 1) for line in sources.content_string.splitlines() if ": " in line and not line.startswith("#")
    )
    assert fields["Types"] == "deb"
    assert fields["URIs"] == oneapi_fact["apt_url"]
    assert fields["Suites"] == oneapi_fact["apt_suite"]
    assert fields["Components"].split() == oneapi_fact["apt_components"]
    assert fields["Signed-By"] == oneapi_fact["keyring"]


def test_apt_preferences_limit_the_repository_to_the_installed_package(host: Any, oneapi_fact: dict[str, Any]) -> None:
    prefs = host.file(oneapi_fact["preferences_file"])
    assert prefs.is_file, f"{oneapi_fact['preferences_file']} is missing"
    assert prefs.user == "root" and prefs.mode == 0o644
    records = [dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith("#"))
               for block in prefs.content_string.strip().split("\n\n")]
    assert [(r["Package"], r["Pin-Priority"]) for r in records][-1] == ("*", "-1")
    assert oneapi_fact["package"] in records[0]["Package"].split()
    # Another DLE version of the same repository is never installable.
    prefix = oneapi_fact["package"].removesuffix(oneapi_fact["version"])
    others = [n for n in host.check_output(f"apt-cache pkgnames {shlex.quote(prefix)}").split()
              if n != oneapi_fact["package"]]
    for other in others[:3]:
        policy = host.check_output(f"apt-cache policy {shlex.quote(other)}")
        assert "Candidate: (none)" in policy, policy


def test_installed_version_comes_from_that_source(host: Any, oneapi_fact: dict[str, Any]) -> None:
    policy = host.check_output(f"apt-cache policy {shlex.quote(oneapi_fact['package'])}")
    assert f"Installed: {oneapi_fact['package_version']}" in policy, policy
    assert f"{oneapi_fact['apt_url']} {oneapi_fact['apt_suite']}/" in policy, policy


def test_setvars_sources_and_exports_oneapi_root(host: Any, oneapi_fact: dict[str, Any]) -> None:
    assert host.file(oneapi_fact["setvars"]).is_file, f"{oneapi_fact['setvars']} is missing"
    env = sourced_env(host, oneapi_fact["setvars"])
    assert env.get("ONEAPI_ROOT") == oneapi_fact["oneapi_root_env"], env
    assert env["ONEAPI_ROOT"].rstrip("/") == oneapi_fact["root"].rstrip("/")


def test_sandbox_stand_in_matches_the_recorded_version(host: Any, oneapi_fact: dict[str, Any]) -> None:
    env = sourced_env(host, oneapi_fact["setvars"])
    if env.get("XPULAB_ONEAPI_STANDIN") != "1":
        pytest.skip("not the sandbox stand-in: Intel's setvars.sh has no version marker to compare")
    assert env["XPULAB_ONEAPI_STANDIN_VERSION"] == oneapi_fact["version"]

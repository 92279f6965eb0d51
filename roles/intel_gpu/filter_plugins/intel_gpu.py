"""Filters of the intel_gpu role: parse read-only probes into decisions.

- ``intel_gpu_primary_fingerprints``: primary-key fingerprints in the output
  of ``gpg --show-keys --with-colons`` (subkeys are not keys apt trusts on
  their own, so they are left out).
- ``intel_gpu_apt_missing_sources``: the deb822 stanzas still needed so that
  every wanted (suite, component) pair is enabled, given what
  ``apt-get indextargets`` says the node's other sources already enable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def _lines(text: str | Iterable[str]) -> list[str]:
    if isinstance(text, str):
        return text.splitlines()
    return [str(line) for line in text]


def primary_fingerprints(colons: str | Iterable[str]) -> list[str]:
    """Fingerprints (upper-case hex) of the primary keys in gpg colon output.

    A ``fpr`` record belongs to the ``pub``/``sub``/``sec``/``ssb`` record
    before it; only those after ``pub`` (or ``sec``) are primary keys.
    """
    found: list[str] = []
    owner = ""
    for line in _lines(colons):
        fields = line.split(":")
        kind = fields[0]
        if kind in {"pub", "sub", "sec", "ssb"}:
            owner = kind
        elif kind == "fpr" and owner in {"pub", "sec"}:
            if len(fields) > 9 and fields[9]:
                found.append(fields[9].upper())
            owner = ""  # one fingerprint per key record
    return found


def normalize_fingerprint(value: Any) -> str:
    """'1c1b 89d0 ...' or '0x1C1B...' -> '1C1B89D0...'; anything else as text."""
    text = "" if value is None else str(value)
    text = text.replace(" ", "").replace(":", "").upper()
    return text[2:] if text.startswith("0X") else text


def apt_missing_sources(
    targets: str | Iterable[str],
    wanted: Iterable[Mapping[str, Any]],
    components: Iterable[str],
    own_file: str,
) -> list[dict[str, Any]]:
    """Stanzas (``uris``, ``suites``, ``components``) still needed.

    ``targets``: lines "IDENTIFIER RELEASE COMPONENT SOURCESENTRY" from
    ``apt-get indextargets --no-release-info --format
    '$(IDENTIFIER) $(RELEASE) $(COMPONENT) $(SOURCESENTRY)'``.
    ``wanted``: items with ``uri`` and ``suite``. A (suite, component) pair
    counts as enabled when a binary ``Packages`` target for it comes from a
    sources entry outside ``own_file`` (whatever its mirror), so the role's
    file never duplicates a line the admin already has. Suites of one URI
    that miss the same components share a stanza; order is kept.
    """
    enabled: set[tuple[str, str]] = set()
    for line in _lines(targets):
        fields = line.split()
        if len(fields) < 4 or fields[0] != "Packages":
            continue
        entry = fields[3].rsplit(":", 1)[0]
        if entry == own_file:
            continue
        enabled.add((fields[1], fields[2]))

    wanted_components = [str(c) for c in components]
    stanzas: list[dict[str, Any]] = []
    for item in wanted:
        uri, suite = str(item["uri"]), str(item["suite"])
        missing = [c for c in wanted_components if (suite, c) not in enabled]
        if not missing:
            continue
        for stanza in stanzas:
            if stanza["uris"] == uri and stanza["components"] == missing:
                stanza["suites"].append(suite)
                break
        else:
            stanzas.append({"uris": uri, "suites": [suite], "components": missing})
    return stanzas


class FilterModule:
    """Ansible filter plugin entry point."""

    def filters(self) -> dict[str, Any]:
        return {
            "intel_gpu_primary_fingerprints": primary_fingerprints,
            "intel_gpu_normalize_fingerprint": normalize_fingerprint,
            "intel_gpu_apt_missing_sources": apt_missing_sources,
        }

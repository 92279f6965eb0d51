"""Filter of the intel_gpu role: parse a read-only probe into a decision.

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
            "intel_gpu_apt_missing_sources": apt_missing_sources,
        }

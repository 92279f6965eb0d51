"""Filters of the xpulab roles.

``intel_gpu_apt_missing_sources``: the deb822 stanzas still needed so that every
wanted (suite, component) pair is enabled, given what ``apt-get indextargets``
says the node's other sources already enable.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit


def pick_builders(
    hosts: Iterable[str],
    hostvars: Mapping[str, Mapping[str, Any]],
    need_var: str,
    key_var: str,
) -> dict[str, str]:
    """Choose one host per fingerprint among the hosts that need a build.

    Hosts are taken in play order, so the choice is stable between runs:
    the first host whose ``need_var`` is true claims its ``key_var`` value.
    Returns a mapping fingerprint -> builder host.
    """
    builders: dict[str, str] = {}
    for host in hosts:
        hvars = hostvars.get(host, {})
        if not _truthy(hvars.get(need_var, False)):
            continue
        key = hvars.get(key_var)
        if not key:
            raise ValueError(f"host {host} needs a build but has no {key_var}")
        builders.setdefault(str(key), host)
    return builders


def compat_matches(
    rows: Iterable[Mapping[str, Any]],
    method: str,
    torchcodec: str,
    torch: str,
    ffmpeg: str,
) -> list[dict[str, Any]]:
    """Rows of a compatibility table that cover a combination.

    A row names a ``method`` and a ``torchcodec`` full commit sha (source; its
    ``ref`` is a label) or version (plugin), and lists the ``torch`` and
    ``ffmpeg`` versions known to work with it. A listed version matches one
    equal to it or of which it is a dotted prefix ("2.14" covers "2.14.1").
    """
    return [
        dict(row)
        for row in rows
        if row.get("method") == method
        and str(row.get("torchcodec")) == torchcodec
        and _covers(row.get("torch", []), torch)
        and _covers(row.get("ffmpeg", []), ffmpeg)
    ]


def compat_describe(rows: Iterable[Mapping[str, Any]], method: str | None = None) -> str:
    """One line per row, for error messages that list supported combinations."""
    lines = []
    for row in rows:
        if method is not None and row.get("method") != method:
            continue
        lines.append(
            f"- {row.get('method')} {row.get('torchcodec')}{' (' + str(row['ref']) + ')' if row.get('ref') else ''}: "
            f"torch {_join(row.get('torch'))}, FFmpeg {_join(row.get('ffmpeg'))}"
            + (f", oneAPI {row['oneapi']}" if row.get("oneapi") else "")
            + f" ({row.get('source', 'no source given')})"
        )
    return "\n".join(lines)


def _covers(listed: Any, version: str) -> bool:
    if isinstance(listed, (str, int, float)):
        listed = [listed]
    version = str(version)
    return any(version == str(v) or version.startswith(f"{v}.") for v in listed)


def _join(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "/".join(str(v) for v in value)
    return str(value)


def tree_digest(paths: str | Iterable[str]) -> str:
    """sha256 over the relative names and contents of every file below the paths.

    Compiled Python caches are left out: they differ between controllers
    without any change to the code.
    """
    roots = [paths] if isinstance(paths, str) else list(paths)
    digest = hashlib.sha256()
    for root in roots:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            raise ValueError(f"{root} is not a directory")
        digest.update(f"root\0{os.path.basename(real)}\0".encode())
        for folder, subdirs, files in os.walk(real):
            subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith((".pyc", ".pyo")):
                    continue
                full = os.path.join(folder, name)
                digest.update(f"{os.path.relpath(full, real)}\0".encode())
                with open(full, "rb") as handle:
                    digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


def pip_index_args(index_url: str, extra_index_urls: Iterable[str] = ()) -> list[str]:
    """pip's --index-url, each --extra-index-url, and --trusted-host for every http:// index host."""
    extra = list(extra_index_urls)
    hosts = dict.fromkeys(urlsplit(url).hostname for url in [index_url, *extra] if url.lower().startswith("http://"))
    return (["--index-url", index_url] + [arg for url in extra for arg in ("--extra-index-url", url)]
            + [arg for host in hosts if host for arg in ("--trusted-host", host)])


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


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
            "xpulab_pick_builders": pick_builders,
            "xpulab_compat_matches": compat_matches,
            "xpulab_compat_describe": compat_describe,
            "xpulab_tree_digest": tree_digest,
            "intel_gpu_apt_missing_sources": apt_missing_sources,
            "xpulab_pip_index_args": pip_index_args,
        }

"""The HTML fleet report in a real browser: headless Chromium (Debian's `chromium` package).

The report is generated from fixture node reports and run history records (two
nodes, cpu and xpu:0, three runs), opened with `chromium --headless
--dump-dom`, and the DOM the browser built is checked: the per-role table's
cells and the history chart's series and points. A screenshot is kept as a
test artifact (.cache/test-artifacts/fleet-report.png, with the page beside
it) and checked to be a valid PNG (every chunk's CRC, the pixel data
unfiltered) that is not blank: the chart's series colours are on it.

Without chromium the tests are skipped, except when CI=true: then they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

import fleet_report  # roles/fleet_report/files (conftest.py)
from test_fleet_report import CLIP, ROLES, history_record, node_file, result, smoke_report, write_history

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".cache" / "test-artifacts"
WIDTH, HEIGHT = 1280, 2000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        reason = "chromium is not installed (Debian package `chromium`; `make deps` installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true needs the browser test")
        pytest.skip(reason)
    return path


def browse(page: Path, profile: Path, *flags: str) -> str:
    """Run headless Chromium on page with flags; its stdout."""
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
         *flags, page.as_uri()],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


# ------------------------------------------------------------------ fixture report


def report_inputs(root: Path) -> tuple[Path, Path]:
    """Two nodes with cpu and xpu:0 in this run; two earlier runs in the history and this one, running."""
    nodes = root / "nodes"
    nodes.mkdir(parents=True)
    for name, cpu, xpu in (("xpulab-node1", 512.3, 1830.0), ("xpulab-node2", 498.0, 1790.5)):
        data = node_file(name, smoke_report({CLIP: {"cpu": result(fps=cpu), "xpu:0": result(fps=xpu)}}))
        (nodes / f"{name}.json").write_text(json.dumps(data))
    write_history(
        root / "history",
        history_record(
            "20261130T110102Z-1a2b3c4d",
            {"xpulab-node1": (ROLES, {"cpu": 500.0, "xpu:0": 1700.0}, "passed"),
             "xpulab-node2": (ROLES, {"cpu": 480.0, "xpu:0": 1650.0}, "passed")},
        ),
        history_record(
            "20261130T130102Z-2b3c4d5e",
            {"xpulab-node1": (ROLES, {"cpu": 505.0, "xpu:0": 1750.0}, "passed"),
             "xpulab-node2": (ROLES, {"cpu": 490.0}, "failed")},
        ),
        history_record(
            "20261130T150102Z-3c4d5e6f",
            {"xpulab-node1": ({"intel_gpu": 3.2, "ffmpeg": 545.5, "pytorch": 7.9, "(none)": 1.0}, {}, None),
             "xpulab-node2": ({"intel_gpu": 2.8, "ffmpeg": 530.0, "pytorch": 8.1, "(none)": 1.25}, {}, None)},
            "running",
        ),
    )  # fmt: skip
    return nodes, root / "history"


class Dom(HTMLParser):
    """What the checks need from the DOM Chromium dumped: the roles table's rows and the chart's series."""

    def __init__(self) -> None:
        super().__init__()
        self.roles: list[list[str]] = []
        self.series: dict[tuple[str, str], list[str]] = {}  # (node, device) -> data-run of each point
        self.history_svg = 0
        self._in_roles = self._in_cell = False
        self._series: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        classes = attr.get("class", "").split()
        if tag == "table" and "roles" in classes:
            self._in_roles = True
        elif self._in_roles and tag == "tr":
            self.roles.append([])
        elif self._in_roles and tag in ("td", "th"):
            self._in_cell = True
            self.roles[-1].append("")
        elif tag == "svg" and "history" in classes:
            self.history_svg += 1
        elif tag == "g" and "series" in classes:
            self._series = (attr["data-node"], attr["data-device"])
            self.series[self._series] = []
        elif tag == "circle" and "point" in classes and self._series is not None:
            self.series[self._series].append(attr["data-run"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_roles = False
        elif tag in ("td", "th"):
            self._in_cell = False
        elif tag == "g":
            self._series = None

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.roles[-1][-1] += data.strip()


# ------------------------------------------------------------------ PNG


def png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, body) of each chunk; asserts the signature and every CRC."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    pos = 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        yield kind, body
        pos += 12 + length


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and unfiltered RGB(A) rows of an 8-bit, non-interlaced truecolour PNG."""
    chunks = list(png_chunks(data))
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour, _method, _filter, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour in (2, 6), interlace) == (8, True, 0), (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(raw) == height * (stride + 1)
    rows: list[bytes] = []
    prev = bytes(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 2:  # Up
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif kind in (1, 3, 4):  # Sub, Average, Paeth (RFC 2083, 6.3-6.6)
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                if kind == 1:
                    line[i] = (line[i] + a) & 255
                elif kind == 3:
                    line[i] = (line[i] + (a + b) // 2) & 255
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        else:
            assert kind == 0, f"filter type {kind}"
        rows.append(bytes(line))
        prev = rows[-1]
    return (
        width,
        height,
        [row if bpp == 3 else bytes(v for i, v in enumerate(row) if i % 4 != 3) for row in rows],
    )


def colour_counts(rows: list[bytes]) -> dict[bytes, int]:
    counts: dict[bytes, int] = {}
    for row in rows:
        for i in range(0, len(row), 3):
            pixel = row[i : i + 3]
            counts[pixel] = counts.get(pixel, 0) + 1
    return counts


def test_png_reader_rejects_a_bad_crc() -> None:
    body = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(body)) + b"IHDR" + body + struct.pack(">I", zlib.crc32(b"IHDR" + body) ^ 1)
    with pytest.raises(AssertionError, match="bad CRC"):
        png_pixels(PNG_SIGNATURE + chunk)


# ------------------------------------------------------------------ the browser


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chromium()
    root = tmp_path_factory.mktemp("browser")
    nodes, history = report_inputs(root)
    html = root / "fleet-summary.html"
    argv = ["--reports-dir", str(nodes), "--history-dir", str(history), "--html", str(html)]
    assert fleet_report.main(argv) == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(html, ARTIFACTS / "fleet-report.html")
    return html


def test_rendered_dom_has_the_roles_table_and_the_chart(page: Path) -> None:
    dom = Dom()
    dom.feed(browse(page, page.parent / "profile-dom", "--dump-dom"))
    assert dom.roles == [
        ["node", "intel_gpu", "ffmpeg", "pytorch", "(none)", "total"],
        ["xpulab-node1", "3.2", "545.5", "7.9", "1.0", "557.6"],
        ["xpulab-node2", "2.8", "530.0", "8.1", "1.2", "542.1"],
        ["total", "6.0", "1075.5", "16.0", "2.2", "1099.8"],
    ]
    assert dom.history_svg == 1
    runs = ["2026-11-30T11:01:02Z", "2026-11-30T13:01:02Z", "2026-11-30T15:01:02Z"]
    assert dom.series == {  # one series per node and device; a point per run it decoded in
        ("xpulab-node1", "cpu"): runs,
        ("xpulab-node1", "xpu:0"): runs,
        ("xpulab-node2", "cpu"): runs,
        ("xpulab-node2", "xpu:0"): [runs[0], runs[2]],
    }


def test_screenshot_is_a_non_blank_png(page: Path) -> None:
    shot = ARTIFACTS / "fleet-report.png"
    shot.unlink(missing_ok=True)
    browse(page, page.parent / "profile-shot", f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}")
    width, height, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    counts = colour_counts(rows)
    background = max(counts, key=lambda colour: counts[colour])
    assert background == b"\xff\xff\xff"
    assert sum(n for colour, n in counts.items() if colour != background) > width * height // 50
    # The history chart's four series were drawn, each in its palette colour
    # (the bar chart uses the first two, for cpu and xpu:0; the last two are only in the history chart).
    for colour in fleet_report.PALETTE[:4]:
        assert counts.get(bytes.fromhex(colour[1:]), 0) > 20, colour

"""Print the fault suite's summary table (case, outcome, seconds) from pytest's JUnit XML reports.

make faults and make faults-ci write reports/faults/<target>.xml and print this
table after the run; several reports (runs of parts of the suite) make one
table. A case's seconds are its whole test: set-up (a converged node for the
module's first case), call and tear-down.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Case:
    name: str
    outcome: str
    seconds: float


def cases(report: Path) -> list[Case]:
    """Every test case of one JUnit XML report, in run order."""
    found = []
    for case in ET.parse(report).getroot().iter("testcase"):
        module = (case.get("classname") or "").rsplit(".", 1)[-1]
        name = f"{module}.py::{case.get('name')}" if module else str(case.get("name"))
        outcome = "passed"
        for child, word in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            element = case.find(child)
            if element is not None:
                outcome = "xfailed" if word == "skipped" and element.get("type") == "pytest.xfail" else word
                break
        found.append(Case(name, outcome, float(case.get("time") or 0.0)))
    return found


def table(found: Sequence[Case]) -> str:
    """The Markdown table, then one line of totals per outcome."""
    lines = ["| case | outcome | seconds |", "| --- | --- | ---: |"]
    lines += [f"| `{c.name}` | {c.outcome} | {c.seconds:.1f} |" for c in found]
    counts: dict[str, int] = {}
    for c in found:
        counts[c.outcome] = counts.get(c.outcome, 0) + 1
    total = sum(c.seconds for c in found)
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    lines += ["", f"{len(found)} cases: {summary}; {total:.1f} s in all"]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    if not argv:
        print("usage: summary.py REPORT.xml [REPORT.xml ...]", file=sys.stderr)
        return 2
    found = [case for report in argv for case in cases(Path(report))]
    print(table(found))
    return 0 if all(c.outcome in {"passed", "skipped", "xfailed"} for c in found) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Line and branch coverage per package, from `coverage json` output (deploy/local/test.sh prints it after
coverage's own per-file report): `python deploy/local/coverage_summary.py var/coverage/<ns>/coverage.json`."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def package_of(path: str) -> str:
    parts = Path(path).parts
    return next((p for p in parts if p.startswith("mif_")), parts[0])


def percent(covered: int, total: int) -> str:
    return f"{100 * covered / total:5.1f}%" if total else "    -"


def main(report: str) -> int:
    files = json.loads(Path(report).read_text())["files"]
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for path, data in files.items():
        summary = data["summary"]
        row = totals[package_of(path)]
        row[0] += summary["num_statements"]
        row[1] += summary["covered_lines"]
        row[2] += summary["num_branches"]
        row[3] += summary["covered_branches"]
    print(f"{'package':20} {'lines':>7} {'branches':>9} {'both':>7}")
    grand = [0, 0, 0, 0]
    for name, (lines, covered, branches, taken) in sorted(totals.items()):
        grand = [grand[0] + lines, grand[1] + covered, grand[2] + branches, grand[3] + taken]
        both = percent(covered + taken, lines + branches)
        print(f"{name:20} {percent(covered, lines):>7} {percent(taken, branches):>9} {both:>7}")
    lines, covered, branches, taken = grand
    both = percent(covered + taken, lines + branches)
    print(f"{'all':20} {percent(covered, lines):>7} {percent(taken, branches):>9} {both:>7}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))

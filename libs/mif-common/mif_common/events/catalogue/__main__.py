"""`python -m mif_common.events.catalogue [--check] [--output-dir DIR]` (also `make catalogue`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mif_common.events.catalogue.discovery import DOCS_DIR, discover_catalogue
from mif_common.events.catalogue.files import drift, render_files, write_files
from mif_common.events.catalogue.model import CatalogueError
from mif_common.suite import REPO_ROOT


def _base(directory: Path) -> str:
    """The folder as the Markdown's relative links need it (repository-relative when possible)."""
    try:
        return directory.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return directory.as_posix()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mif_common.events.catalogue", description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; fail if the files drift from the code")
    parser.add_argument("--output-dir", type=Path, default=DOCS_DIR, help="default: docs/events")
    args = parser.parse_args(argv)
    directory: Path = args.output_dir
    catalogue = discover_catalogue()
    try:
        catalogue.check()
    except CatalogueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    files = render_files(catalogue, base=_base(directory))
    if args.check:
        report = drift(directory, files)
        if report:
            print("error: the event catalogue drifted from the code:", file=sys.stderr)
            print("\n".join(report), file=sys.stderr)
            print(
                "Run `make catalogue` (python -m mif_common.events.catalogue) and commit the result.", file=sys.stderr
            )
            return 1
        print(f"event catalogue up to date ({len(catalogue.event_types())} event types)")
        return 0
    written = write_files(directory, files)
    for name in files:
        print(f"{directory / name}: {'written' if name in written else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The generated files, their writing, and the drift report of `--check`."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mif_common.events.catalogue.asyncapi import build_asyncapi
from mif_common.events.catalogue.markdown import render_markdown
from mif_common.events.catalogue.model import Catalogue

ASYNCAPI_FILE = "asyncapi.json"
MARKDOWN_FILE = "catalogue.md"
# Parts of the AsyncAPI document compared entry by entry, so a drift names the event types concerned.
_KEYED_PARTS = (
    ("channels",),
    ("operations",),
    ("components", "messages"),
    ("components", "schemas"),
)
_DIFF_LINES = 40


def dump_json(document: Any) -> str:
    """Stable text: sorted keys, two-space indent, UTF-8 as is, a trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_files(catalogue: Catalogue, *, base: str = "docs/events") -> dict[str, str]:
    """File name → content of everything generated from `catalogue` (written under `base`)."""
    document = build_asyncapi(catalogue)
    return {ASYNCAPI_FILE: dump_json(document), MARKDOWN_FILE: render_markdown(document, base=base)}


def write_files(directory: Path, files: Mapping[str, str]) -> list[str]:
    """Write the files that differ; returns their names."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in files.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
            written.append(name)
    return written


def _part(document: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    node = document
    for key in keys:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _json_drift(expected: Any, actual: Any) -> list[str]:
    lines = []
    for keys in _KEYED_PARTS:
        want, have = _part(expected, keys), _part(actual, keys)
        where = ".".join(keys)
        for label, names in (
            ("missing", sorted(set(want) - set(have))),
            ("not in the code any more", sorted(set(have) - set(want))),
            ("changed", sorted(n for n in set(want) & set(have) if want[n] != have[n])),
        ):
            if names:
                lines.append(f"{where} {label}: {', '.join(names)}")
    rest = sorted(k for k in set(expected) | set(actual) if k not in ("channels", "operations", "components"))
    changed = [k for k in rest if expected.get(k) != actual.get(k)]
    if changed:
        lines.append(f"also changed: {', '.join(changed)}")
    return lines or ["formatting only (keys, indentation or trailing newline)"]


def _text_drift(name: str, expected: str, actual: str) -> list[str]:
    diff = list(
        difflib.unified_diff(
            actual.splitlines(), expected.splitlines(), f"{name} (checked in)", f"{name} (generated)", lineterm=""
        )
    )
    if len(diff) > _DIFF_LINES:
        diff = [*diff[:_DIFF_LINES], f"... ({len(diff) - _DIFF_LINES} more diff lines)"]
    return diff


def drift(directory: Path, files: Mapping[str, str]) -> list[str]:
    """What differs between the files in `directory` and `files`, as lines for a person; [] if nothing."""
    report: list[str] = []
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            report.append(f"{path}: missing")
            continue
        actual = path.read_text(encoding="utf-8")
        if actual == expected:
            continue
        report.append(f"{path}: out of date")
        if name.endswith(".json"):
            try:
                details = _json_drift(json.loads(expected), json.loads(actual))
            except json.JSONDecodeError as exc:
                details = [f"not valid JSON ({exc})"]
        else:
            details = _text_drift(name, expected, actual)
        report += [f"  {line}" for line in details]
    return report

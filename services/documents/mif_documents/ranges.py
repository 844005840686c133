"""HTTP `Range` requests on downloads (RFC 9110 §14): one byte range, or the whole file."""

from __future__ import annotations

from mif_common.errors import DomainError


class RangeNotSatisfiable(DomainError):
    status, slug, title = 416, "range-not-satisfiable", "Range not satisfiable"


def requested_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The half-open byte range `[start, end)` asked for, or None to send the whole file (no Range,
    a syntax we ignore as RFC 9110 allows, or several ranges). 416 when it starts past the end."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = (s.strip() for s in spec.partition("-"))
    if not dash or len(first) > 19 or len(last) > 19:
        return None
    if not first:  # suffix: the last N bytes
        if not last.isdigit():
            return None
        if int(last) == 0:
            raise _unsatisfiable(size)
        return max(0, size - int(last)), size
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise _unsatisfiable(size)
    end = min(int(last) + 1, size) if last else size
    return start, end


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(
        f"The requested range is outside the document ({size} bytes).",
        headers={"Content-Range": f"bytes */{size}"},
    )

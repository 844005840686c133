"""CSV and XLSX of any list of rows, typed by column: what Excel in a French locale opens as numbers and dates."""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, BinaryIO, Literal

import xlsxwriter

from mif_reports.formats import date_fr, datetime_fr, heure_locale

Kind = Literal["text", "int", "decimal", "money", "date", "datetime", "percent", "minutes", "bool"]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of an export: the row's key, its French header and how its values are typed."""

    key: str
    titre: str
    kind: Kind = "text"
    largeur: float | None = None  # Excel width in characters; None: from the title and kind


_BOM = "\ufeff"
_CHUNK = 64 * 1024
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_XLSX_MAX_STRING = 32_767  # Excel's limit for one cell
_KIND_WIDTH: Mapping[str, float] = {
    "text": 20,
    "int": 10,
    "decimal": 12,
    "money": 16,
    "date": 12,
    "datetime": 17,
    "percent": 10,
    "minutes": 10,
    "bool": 8,
}
_NUM_FORMATS: Mapping[str, str] = {
    "int": "0",
    "decimal": "#,##0.00",
    "money": '#,##0.00 "MAD"',
    "date": "dd/mm/yyyy",
    "datetime": "dd/mm/yyyy hh:mm",
    "percent": "0.0%",
    "minutes": "0",
}


def neutralise(text: str) -> str:
    """A leading `'` on text a spreadsheet would otherwise run as a formula."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _number(value: Any) -> float | int | Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal) and not value.is_finite():
        return None
    return value


# --- CSV ---------------------------------------------------------------------------------------------------------


def _decimal_csv(value: float | int | Decimal) -> str:
    if isinstance(value, int):
        return str(value)
    # repr() is the shortest exact form of a float; Decimal turns its exponent notation (1e-05) into digits.
    texte = format(Decimal(repr(value)) if isinstance(value, float) else value, "f")
    return texte.replace(".", ",")


def _csv_cell(kind: Kind, value: Any) -> str:
    if value is None:
        return ""
    if kind == "text":
        return neutralise(str(value))
    if kind == "bool":
        return "oui" if value else "non"
    if kind == "date" and isinstance(value, date):
        return date_fr(value)
    if kind == "datetime" and isinstance(value, datetime):
        return datetime_fr(value)
    if kind == "datetime" and isinstance(value, date):
        return date_fr(value)
    number = _number(value)
    if number is None:
        return neutralise(str(value))  # a value of the wrong type is still shown, as harmless text
    if kind == "money":
        mad = (Decimal(str(number)) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        return format(mad, "f").replace(".", ",")
    if kind == "percent":
        # Same rounding as the XLSX's "0.0%": the CSV shows what the spreadsheet shows.
        percent = (Decimal(str(number)) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        return format(percent, "f").replace(".", ",")
    return _decimal_csv(number)


def _csv_header(column: Column) -> str:
    return f"{column.titre} (MAD)" if column.kind == "money" else column.titre


def csv_chunks(columns: Sequence[Column], rows: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
    """The CSV Excel opens in a French locale (BOM, `;`, CRLF, decimal comma), streamed in ~64 KB chunks."""
    buffer = io.StringIO()
    buffer.write(_BOM)
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([_csv_header(c) for c in columns])
    for row in rows:
        writer.writerow([_csv_cell(c.kind, row.get(c.key)) for c in columns])
        if buffer.tell() >= _CHUNK:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate(0)
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


# --- XLSX --------------------------------------------------------------------------------------------------------

_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def _sheet_name(titre: str) -> str:
    # Excel refuses these characters, names over 31 characters and names starting or ending with an apostrophe.
    name = _SHEET_NAME_FORBIDDEN.sub("-", titre).strip().strip("'")[:31].strip("'")
    return name or "Feuille1"


def _width(column: Column) -> float:
    if column.largeur is not None:
        return column.largeur
    return min(max(len(column.titre) + 3.0, _KIND_WIDTH[column.kind]), 60.0)


class _SheetWriter:
    """Writes one typed cell at a time; formats are created once per workbook."""

    def __init__(self, workbook: Any, worksheet: Any) -> None:
        self._ws = worksheet
        self._formats = {kind: workbook.add_format({"num_format": fmt}) for kind, fmt in _NUM_FORMATS.items()}

    def write(self, row: int, col: int, kind: Kind, value: Any) -> None:
        ws = self._ws
        if value is None:
            return
        if kind == "text":
            ws.write_string(row, col, str(value)[:_XLSX_MAX_STRING])
        elif kind == "bool":
            ws.write_boolean(row, col, bool(value))
        elif kind == "date" and isinstance(value, date):
            day = heure_locale(value).date() if isinstance(value, datetime) else value
            ws.write_datetime(row, col, day, self._formats["date"])
        elif kind == "datetime" and isinstance(value, datetime):
            # Excel has no time zones: the wall-clock time in Casablanca is what the reader expects.
            ws.write_datetime(row, col, heure_locale(value).replace(tzinfo=None), self._formats["datetime"])
        elif kind == "datetime" and isinstance(value, date):
            ws.write_datetime(row, col, value, self._formats["date"])
        else:
            self._write_number(row, col, kind, value)

    def _write_number(self, row: int, col: int, kind: Kind, value: Any) -> None:
        number = _number(value)
        if number is None:
            if not (isinstance(value, float | Decimal)):  # NaN and infinities stay blank
                self._ws.write_string(row, col, str(value)[:_XLSX_MAX_STRING])
            return
        if kind == "money":
            number = float(number) / 100
        self._ws.write_number(row, col, float(number), self._formats.get(kind))


def write_xlsx(
    columns: Sequence[Column],
    rows: Iterable[Mapping[str, Any]],
    out: str | os.PathLike[str] | BinaryIO,
    *,
    titre_feuille: str,
    titre: str | None = None,
) -> int:
    """One typed sheet, rows streamed to disk (constant memory); returns the number of data rows."""
    target = os.fspath(out) if isinstance(out, os.PathLike) else out
    workbook = xlsxwriter.Workbook(target, {"constant_memory": True})
    try:
        if titre:
            workbook.set_properties({"title": titre})
        worksheet = workbook.add_worksheet(_sheet_name(titre_feuille))
        header = workbook.add_format({"bold": True})
        for index, column in enumerate(columns):
            worksheet.set_column(index, index, _width(column))
            worksheet.write_string(0, index, column.titre, header)
        worksheet.freeze_panes(1, 0)
        writer = _SheetWriter(workbook, worksheet)
        count = 0
        for count, row in enumerate(rows, start=1):
            for index, column in enumerate(columns):
                writer.write(count, index, column.kind, row.get(column.key))
        if columns:
            worksheet.autofilter(0, 0, count, len(columns) - 1)
    finally:
        workbook.close()
    return count

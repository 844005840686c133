"""CSV and XLSX exports read back the way a user's Excel (or the csv module and openpyxl) reads them."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.utils import get_column_letter

from mif_reports.tabular import Column, csv_chunks, write_xlsx

COLUMNS = [
    Column("numero", "N°", "int"),
    Column("titre", "Titre"),
    Column("cout", "Coût total", "money"),
    Column("cloture", "Date de clôture", "date"),
    Column("creee", "Créée le", "datetime"),
    Column("sla", "Respect SLA", "percent"),
    Column("duree", "Durée (min)", "minutes"),
    Column("quantite", "Quantité", "decimal"),
    Column("urgent", "Urgente", "bool", largeur=9),
]

ROWS: list[Mapping[str, Any]] = [
    {
        "numero": 1042,
        "titre": "Fuite vanne; « salle » des pompes",
        "cout": 123450,
        "cloture": date(2026, 12, 4),
        # 23:30 UTC is already the 5th at 00:30 in Casablanca (UTC+1 in December).
        "creee": datetime(2026, 12, 4, 23, 30, tzinfo=UTC),
        "sla": 0.9234,
        "duree": 125,
        "quantite": Decimal("2.5"),
        "urgent": True,
    },
    {"numero": 1043, "titre": '=HYPERLINK("http://evil")', "cout": -5, "urgent": False, "quantite": 0.1},
    {"numero": None, "titre": "+33 6 12", "cout": None},
    {"titre": "-2+3"},
    {"titre": "@SUM(A1)"},
    {"titre": "\tcaché"},
]


def _csv(columns: list[Column], rows: list[Mapping[str, Any]]) -> list[list[str]]:
    data = b"".join(csv_chunks(columns, rows))
    assert data.startswith(b"\xef\xbb\xbf")
    text = data[3:].decode("utf-8")
    assert "\r\n" in text
    assert "\n" not in text.replace("\r\n", "")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))


def test_csv_is_french_excel_csv() -> None:
    lines = _csv(COLUMNS, ROWS)

    assert lines[0] == [
        "N°",
        "Titre",
        "Coût total (MAD)",
        "Date de clôture",
        "Créée le",
        "Respect SLA",
        "Durée (min)",
        "Quantité",
        "Urgente",
    ]
    assert lines[1] == [
        "1042",
        "Fuite vanne; « salle » des pompes",
        "1234,50",
        "04/12/2026",
        "05/12/2026 00:30",
        "92,3",
        "125",
        "2,5",
        "oui",
    ]
    assert lines[2][2] == "-0,05"
    assert lines[2][7] == "0,1"
    assert lines[2][8] == "non"
    assert lines[3] == ["", "'+33 6 12", "", "", "", "", "", "", ""]


def test_csv_neutralises_formulas_in_text_only() -> None:
    lines = _csv(COLUMNS, ROWS)

    assert lines[2][1] == '\'=HYPERLINK("http://evil")'
    assert lines[4][1] == "'-2+3"
    assert lines[5][1] == "'@SUM(A1)"
    assert lines[6][1] == "'\tcaché"
    # A negative amount is a number, not text: it keeps its sign.
    assert lines[2][2] == "-0,05"


def test_csv_is_streamed_in_chunks() -> None:
    rows = ({"numero": i, "titre": f"Intervention {i}"} for i in range(20_000))

    chunks = list(csv_chunks(COLUMNS, rows))

    assert len(chunks) > 3
    assert all(len(chunk) < 80 * 1024 for chunk in chunks)
    assert chunks[0].startswith(b"\xef\xbb\xbf")
    assert not any(chunk.startswith(b"\xef\xbb\xbf") for chunk in chunks[1:])
    lines = b"".join(chunks).decode("utf-8-sig").split("\r\n")
    assert lines[20_000].startswith("19999;Intervention 19999;")


def test_csv_without_rows_is_the_header() -> None:
    assert b"".join(csv_chunks(COLUMNS[:2], [])) == "\ufeffN°;Titre\r\n".encode()


def test_xlsx_cells_are_typed(tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"

    count = write_xlsx(COLUMNS, ROWS, path, titre_feuille="Interventions", titre="Interventions de décembre")

    assert count == len(ROWS)
    workbook = openpyxl.load_workbook(path)
    assert workbook.properties.title == "Interventions de décembre"
    assert workbook.sheetnames == ["Interventions"]
    ws = workbook.active
    assert ws is not None
    assert [c.value for c in ws[1]] == [c.titre for c in COLUMNS]
    assert all(c.font.b for c in ws[1])

    numero, titre, cout, cloture, creee, sla, duree, quantite, urgent = ws[2]
    assert numero.value == 1042
    assert numero.data_type == "n"
    assert titre.value == "Fuite vanne; « salle » des pompes"
    assert cout.value == 1234.5
    assert cout.number_format == '#,##0.00 "MAD"'
    assert isinstance(cloture.value, datetime)
    assert cloture.value == datetime(2026, 12, 4)
    assert cloture.number_format == "dd/mm/yyyy"
    assert creee.value == datetime(2026, 12, 5, 0, 30)
    assert creee.number_format == "dd/mm/yyyy hh:mm"
    assert sla.value == pytest.approx(0.9234)
    assert sla.number_format == "0.0%"
    assert duree.value == 125
    assert quantite.value == 2.5
    assert urgent.value is True
    assert ws["C3"].value == -0.05
    assert ws["I3"].value is False
    assert ws["A4"].value is None


def test_xlsx_layout_header_frozen_filtered_widths(tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"

    write_xlsx(COLUMNS, ROWS, path, titre_feuille="Interventions")

    ws = openpyxl.load_workbook(path).active
    assert ws is not None
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:I{len(ROWS) + 1}"
    # openpyxl groups adjacent columns of the same width under the first one's letter.
    widths = {
        get_column_letter(index): dim.width
        for dim in ws.column_dimensions.values()
        for index in range(dim.min, dim.max + 1)
    }
    assert set(widths) == set("ABCDEFGHI")
    # The width given wins; otherwise at least the title fits.
    assert widths["I"] == pytest.approx(9, abs=1)
    assert widths["D"] >= len("Date de clôture")
    assert widths["C"] >= 15


def test_xlsx_text_is_never_a_formula(tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"

    write_xlsx(COLUMNS, ROWS, path, titre_feuille="Interventions")

    ws = openpyxl.load_workbook(path).active
    assert ws is not None
    for row in (3, 5, 6):
        cell = ws.cell(row=row, column=2)
        assert cell.data_type == "s", cell.value
    assert ws["B3"].value == '=HYPERLINK("http://evil")'
    assert ws["B5"].value == "-2+3"


def test_xlsx_to_a_stream_and_odd_sheet_names() -> None:
    out = io.BytesIO()

    count = write_xlsx(COLUMNS[:2], [], out, titre_feuille="Rapport [12/2026]: interventions et pièces détachées")

    assert count == 0
    workbook = openpyxl.load_workbook(io.BytesIO(out.getvalue()))
    ws = workbook.active
    assert ws is not None
    assert ws.title == "Rapport -12-2026-- intervention"
    assert ws.auto_filter.ref == "A1:B1"
    assert ws.max_row == 1

"""What both PDF reports share: user text made safe for reportlab, styles, tables, and the "Page n / N" footer."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, BinaryIO
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Table, TableStyle

from mif_reports.formats import datetime_fr

FONT = "Helvetica"
FONT_BOLD = "Helvetica-Bold"
MARGIN = 15 * mm
PAGE_WIDTH, PAGE_HEIGHT = A4
FRAME_WIDTH = PAGE_WIDTH - 2 * MARGIN
GRID = colors.HexColor("#B0B7C3")
HEADER_FILL = colors.HexColor("#E3E8EF")
ALERT = colors.HexColor("#B00020")

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

STYLES: dict[str, ParagraphStyle] = {
    "title": ParagraphStyle("title", fontName=FONT_BOLD, fontSize=16, leading=20, spaceAfter=4),
    "subtitle": ParagraphStyle("subtitle", fontName=FONT, fontSize=10, leading=13, spaceAfter=2),
    "h2": ParagraphStyle(
        "h2", fontName=FONT_BOLD, fontSize=11, leading=14, spaceBefore=10, spaceAfter=4, keepWithNext=1
    ),
    "body": ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12, spaceAfter=4),
    "cell": ParagraphStyle("cell", fontName=FONT, fontSize=8, leading=10),
    "cell_bold": ParagraphStyle("cell_bold", fontName=FONT_BOLD, fontSize=8, leading=10),
    "cell_alert": ParagraphStyle("cell_alert", fontName=FONT_BOLD, fontSize=8, leading=10, textColor=ALERT),
}


def texte_sur(text: str | None, limite: int | None = None) -> str:
    """User text the standard Helvetica can draw: control characters as spaces, other glyphs it lacks as "?"."""
    if not text:
        return ""
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", text).replace("\t", " "))
    if limite is not None and len(text) > limite:
        text = text[: limite - 1] + "…"
    # Helvetica's encoding is WinAnsi (cp1252): it also has €, œ, —, ’ and … that Latin-1 lacks.
    return text.encode("cp1252", errors="replace").decode("cp1252")


def para(text: str | None, style: str = "cell", limite: int | None = 2000) -> Paragraph:
    """A paragraph of user text, escaped for reportlab's markup; line breaks kept."""
    markup = escape(texte_sur(text, limite)).replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br/>")
    return Paragraph(markup, STYLES[style])


def ajuste(text: str | None, font: str, size: float, largeur: float) -> str:
    """Text cut with "…" to fit one line of `largeur` points (for cells of fixed height)."""
    safe = texte_sur(text, 400).replace("\n", " ").replace("\r", " ")
    if stringWidth(safe, font, size) <= largeur:
        return safe
    low, high = 0, len(safe)
    while low < high:  # the longest prefix that fits with its ellipsis
        middle = (low + high + 1) // 2
        if stringWidth(safe[:middle] + "…", font, size) <= largeur:
            low = middle
        else:
            high = middle - 1
    return safe[:low] + "…"


def grille(
    data: Sequence[Sequence[Any]],
    largeurs: Sequence[float],
    *,
    entete: bool = True,
    extra: Sequence[tuple[Any, ...]] = (),
) -> Table:
    """A bordered table; the first row a repeated header when `entete`."""
    table = Table(list(map(list, data)), colWidths=list(largeurs), repeatRows=1 if entete else 0, hAlign="LEFT")
    style: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), FONT, 8),
        ("GRID", (0, 0), (-1, -1), 0.4, GRID),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    if entete:
        style += [("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL), ("FONT", (0, 0), (-1, 0), FONT_BOLD, 8)]
    table.setStyle(TableStyle(style + list(extra)))
    return table


def cles_valeurs(paires: Sequence[tuple[str, str | None]], colonnes: int = 2) -> Table:
    """Label/value pairs laid out `colonnes` pairs per line, labels in bold."""
    cellules: list[Flowable | str] = []
    for label, value in paires:
        cellules += [para(label, "cell_bold", None), para(value or "—", "cell", 600)]
    largeur_paire = FRAME_WIDTH / colonnes
    par_ligne = 2 * colonnes
    cellules += [""] * (-len(cellules) % par_ligne)
    lignes = [cellules[i : i + par_ligne] for i in range(0, len(cellules), par_ligne)]
    largeurs = [largeur_paire * 0.38, largeur_paire * 0.62] * colonnes
    fonds = [("BACKGROUND", (2 * i, 0), (2 * i, -1), HEADER_FILL) for i in range(colonnes)]
    return grille(lignes, largeurs, entete=False, extra=fonds)


class _PagedCanvas(Canvas):  # type: ignore[misc]  # reportlab ships no type hints
    """Holds pages back until the end so that each footer can say "Page n / N"."""

    def __init__(self, *args: Any, footer: Callable[[Canvas, int, int], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._footer = footer
        self._pages: list[dict[str, Any]] = []
        self.total_pages = 0

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        pages, total = self._pages, len(self._pages)
        for number, state in enumerate(pages, start=1):
            self.__dict__.update(state)  # also restores the attributes below as they were on that page
            self._footer(self, number, total)
            super().showPage()
        pages.clear()
        self.total_pages = total
        super().save()


def construire(
    out: BinaryIO,
    story: list[Flowable],
    *,
    titre: str,
    entete: str,
    genere_le: datetime,
) -> int:
    """Lays `story` out on A4 with a running header and the footer; returns the page count."""
    entete_sur = ajuste(entete, FONT, 8, FRAME_WIDTH)
    genere = f"Généré le {datetime_fr(genere_le)}"

    def footer(canvas: Canvas, number: int, total: int) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 8)
        canvas.setFillColor(colors.HexColor("#555555"))
        canvas.drawString(MARGIN, PAGE_HEIGHT - MARGIN + 5 * mm, entete_sur)
        canvas.setStrokeColor(GRID)
        canvas.line(MARGIN, PAGE_HEIGHT - MARGIN + 3.5 * mm, PAGE_WIDTH - MARGIN, PAGE_HEIGHT - MARGIN + 3.5 * mm)
        canvas.line(MARGIN, MARGIN - 3 * mm, PAGE_WIDTH - MARGIN, MARGIN - 3 * mm)
        canvas.drawString(MARGIN, MARGIN - 7 * mm, genere)
        canvas.drawRightString(PAGE_WIDTH - MARGIN, MARGIN - 7 * mm, f"Page {number} / {total}")
        canvas.restoreState()

    canvases: list[_PagedCanvas] = []

    def make_canvas(*args: Any, **kwargs: Any) -> _PagedCanvas:
        canvas = _PagedCanvas(*args, footer=footer, **kwargs)
        canvases.append(canvas)
        return canvas

    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=texte_sur(titre, 300),
        author="MIF Maroc",
        creator="MIF maintenance suite",
    )
    doc.build(story, canvasmaker=make_canvas)
    return canvases[-1].total_pages

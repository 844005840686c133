"""The monthly report's charts as PNG bytes, drawn with matplotlib's Agg backend on Figure objects.

No pyplot: its global figure registry is shared by every request of a server process and never freed.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import date

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

DPI = 150
TAILLE = (7.0, 2.5)  # inches: the frame's width at 150 dpi keeps each PNG around 50 KB
BLEU = "#2F5D8A"
VERT = "#4C9A6A"
ORANGE = "#D98C2B"
_MOIS_COURTS = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc.")


def mois_court(d: date) -> str:
    """`nov. 26`."""
    return f"{_MOIS_COURTS[d.month - 1]} {d.year % 100:02d}"


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=DPI)
    finally:
        figure.clear()  # drops the artists now rather than when the garbage collector finds the cycle
    return buffer.getvalue()


def _axes(titre: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=TAILLE, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(titre, fontsize=9, loc="left", fontweight="bold")
    axes.tick_params(labelsize=7)
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", linewidth=0.4, alpha=0.6)
    axes.set_axisbelow(True)
    return figure, axes


def barres_interventions(mois: Sequence[date], creees: Sequence[int], cloturees: Sequence[int]) -> bytes:
    """Interventions created and closed per month, side by side."""
    figure, axes = _axes("Interventions par mois")
    positions = range(len(mois))
    axes.bar([p - 0.2 for p in positions], creees, width=0.4, color=BLEU, label="Créées")
    axes.bar([p + 0.2 for p in positions], cloturees, width=0.4, color=VERT, label="Clôturées")
    axes.set_xticks(list(positions), [mois_court(m) for m in mois])
    axes.set_ylim(0, max([*creees, *cloturees, 1]) * 1.25)  # headroom for the legend above the bars
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(fontsize=7, frameon=False, loc="upper left", ncols=2)
    return _png(figure)


def courbe_backlog(mois: Sequence[date], backlog: Sequence[int]) -> bytes:
    """Open interventions at each month's end."""
    figure, axes = _axes("Backlog en fin de mois")
    positions = list(range(len(mois)))
    axes.plot(positions, backlog, color=ORANGE, marker="o", markersize=3, linewidth=1.5)
    axes.set_xticks(positions, [mois_court(m) for m in mois])
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    return _png(figure)


def barres_sla(mois: Sequence[date], taux: Sequence[float | None]) -> bytes:
    """SLA compliance per month in %, a month without any SLA marked "n/d" instead of a misleading 0."""
    figure, axes = _axes("Respect des SLA (%)")
    positions = list(range(len(mois)))
    valeurs = [math.nan if t is None else t * 100 for t in taux]
    axes.bar(positions, valeurs, width=0.6, color=BLEU)
    for position, valeur in zip(positions, valeurs, strict=True):
        if math.isnan(valeur):
            axes.text(position, 2, "n/d", ha="center", fontsize=6, color="#777777")
    axes.set_xticks(positions, [mois_court(m) for m in mois])
    axes.set_ylim(0, 100)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}\u00a0%"))
    return _png(figure)

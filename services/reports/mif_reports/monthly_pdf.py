"""The monthly client report: indicators, three charts over twelve months, then every intervention of the month."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, BinaryIO

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Image, LongTable, PageBreak, Spacer

from mif_reports import charts
from mif_reports._pdf import (
    ALERT,
    FONT,
    FONT_BOLD,
    FRAME_WIDTH,
    GRID,
    HEADER_FILL,
    cles_valeurs,
    construire,
    para,
)
from mif_reports._pdf import ajuste as _ajuste
from mif_reports.formats import (
    LIBELLES_PRIORITE,
    LIBELLES_STATUT,
    LIBELLES_TYPE,
    date_fr,
    duree_fr,
    heure_locale,
    libelle,
    mois_fr,
    montant_fr,
    nombre_fr,
)


@dataclass(frozen=True, slots=True)
class PointMensuel:
    """One month of the twelve-month series behind the charts; `mois` is the month's first day."""

    mois: date
    interventions: int
    cloturees: int
    backlog: int
    sla_respectes: int
    sla_total: int


@dataclass(frozen=True, slots=True)
class LigneIntervention:
    """One intervention of the month; `cout_total` in centimes."""

    numero: int
    titre: str
    equipement: str
    type: str
    priorite: str
    statut: str
    date_creation: datetime
    date_cloture: datetime | None
    duree_minutes: int | None
    cout_total: int | None
    sla_respecte: bool | None


@dataclass(frozen=True, slots=True)
class RapportMensuel:
    """The month's report of one client; `indicateurs` are (label, already formatted value)."""

    client: str
    mois: date
    indicateurs: Sequence[tuple[str, str]]
    serie: Sequence[PointMensuel]
    interventions: Sequence[LigneIntervention]
    genere_le: datetime


_TAILLE = 7.0  # points: eleven columns on a portrait A4
_HAUTEUR_LIGNE = 10.0
_PADDING = 2.0
# (header, width in points); the title takes what the others leave.
_COLONNES: tuple[tuple[str, float], ...] = (
    ("N°", 26),
    ("Titre", 0),
    ("Équipement", 64),
    ("Type", 48),
    ("Priorité", 46),
    ("Statut", 44),
    ("Création", 40),
    ("Clôture", 40),
    ("Durée", 34),
    ("Coût (MAD)", 48),
    ("SLA", 24),
)


def _largeurs() -> list[float]:
    largeurs = [largeur for _, largeur in _COLONNES]
    largeurs[1] = FRAME_WIDTH - sum(largeurs)
    return largeurs


def _sla(respecte: bool | None) -> str:
    return "—" if respecte is None else ("Oui" if respecte else "Non")


def _ligne(intervention: LigneIntervention, largeurs: Sequence[float]) -> list[str]:
    def ajuste(text: str, index: int) -> str:
        return _ajuste(text, FONT, _TAILLE, largeurs[index] - 2 * _PADDING)

    cout = montant_fr(intervention.cout_total).removesuffix("\u00a0MAD")
    return [
        str(intervention.numero),
        ajuste(intervention.titre, 1),
        ajuste(intervention.equipement, 2),
        ajuste(libelle(LIBELLES_TYPE, intervention.type), 3),
        ajuste(libelle(LIBELLES_PRIORITE, intervention.priorite), 4),
        ajuste(libelle(LIBELLES_STATUT, intervention.statut), 5),
        date_fr(intervention.date_creation),
        date_fr(intervention.date_cloture),
        duree_fr(intervention.duree_minutes),
        cout,
        _sla(intervention.sla_respecte),
    ]


def _tableau(interventions: Sequence[LigneIntervention]) -> Flowable:
    largeurs = _largeurs()
    data = [[entete for entete, _ in _COLONNES]]
    ordre = sorted(interventions, key=lambda i: (heure_locale(i.date_creation), i.numero))
    data += [_ligne(i, largeurs) for i in ordre]
    style: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), FONT, _TAILLE),
        ("FONT", (0, 0), (-1, 0), FONT_BOLD, _TAILLE),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
        ("LINEBELOW", (0, 0), (-1, -1), 0.3, GRID),
        ("ALIGN", (8, 0), (9, -1), "RIGHT"),
        ("ALIGN", (10, 0), (10, -1), "CENTER"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), _PADDING),
        ("RIGHTPADDING", (0, 0), (-1, -1), _PADDING),
        ("TOPPADDING", (0, 0), (-1, -1), 0),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
    ]
    style += [("TEXTCOLOR", (10, n), (10, n), ALERT) for n, row in enumerate(data) if n and row[10] == "Non"]
    # Fixed row heights and one-line cells: splitting thousands of rows stays linear instead of re-measuring them.
    return LongTable(
        data,
        colWidths=largeurs,
        rowHeights=[_HAUTEUR_LIGNE] * len(data),
        repeatRows=1,
        style=style,
        hAlign="LEFT",
    )


def _graphiques(serie: Sequence[PointMensuel]) -> list[Flowable]:
    points = sorted(serie, key=lambda p: p.mois)
    mois = [p.mois for p in points]
    images = [
        charts.barres_interventions(mois, [p.interventions for p in points], [p.cloturees for p in points]),
        charts.courbe_backlog(mois, [p.backlog for p in points]),
        charts.barres_sla(mois, [p.sla_respectes / p.sla_total if p.sla_total else None for p in points]),
    ]
    largeur, hauteur = charts.TAILLE
    echelle = FRAME_WIDTH / (largeur * 72)
    return [Image(io.BytesIO(png), width=FRAME_WIDTH, height=hauteur * 72 * echelle) for png in images]


def render_monthly_report(rapport: RapportMensuel, out: BinaryIO) -> int:
    """Writes the month's report of one client as an A4 PDF to `out`; returns the page count."""
    titre = f"Rapport mensuel de maintenance — {rapport.client} — {mois_fr(rapport.mois)}"
    story: list[Flowable] = [para(titre, "title", 600), para(f"Période : {mois_fr(rapport.mois)}", "subtitle")]
    story.append(para("Indicateurs du mois", "h2", None))
    if rapport.indicateurs:
        story.append(cles_valeurs(list(rapport.indicateurs), colonnes=2))
    else:
        story.append(para("Aucun indicateur.", "body"))
    story.append(para("Évolution sur douze mois", "h2", None))
    if rapport.serie:
        for image in _graphiques(rapport.serie):
            story += [image, Spacer(1, 3 * mm)]
    else:
        story.append(para("Aucune donnée sur la période.", "body"))
    story += [PageBreak(), para(f"Interventions du mois ({nombre_fr(len(rapport.interventions), 0)})", "h2", None)]
    if rapport.interventions:
        story.append(_tableau(rapport.interventions))
    else:
        story.append(para("Aucune intervention ce mois-ci.", "body"))
    entete = f"Rapport mensuel — {rapport.client} — {mois_fr(rapport.mois)}"
    return construire(out, story, titre=titre, entete=entete, genere_le=rapport.genere_le)

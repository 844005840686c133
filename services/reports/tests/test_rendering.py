"""French formats, the work-order PDF and the monthly report, read back with pypdf."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pypdf
import pytest

from mif_reports import charts
from mif_reports.formats import (
    LIBELLES_PRIORITE,
    LIBELLES_STATUT,
    LIBELLES_TYPE,
    date_fr,
    datetime_fr,
    duree_fr,
    montant_fr,
    nombre_fr,
    pourcentage_fr,
)
from mif_reports.monthly_pdf import LigneIntervention, PointMensuel, RapportMensuel, render_monthly_report
from mif_reports.work_order_pdf import (
    BonIntervention,
    DocumentJoint,
    EtapeChecklist,
    LigneHistorique,
    LignePiece,
    render_work_order,
)

NBSP = "\u00a0"
T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)  # 09:00 in Casablanca (UTC+1 in December)
HOSTILE = "<b>gras</b> & \"guillemets\" 'apostrophes' <script>x</script> 🔧🚀 " + "A" * 5000 + " fin"

# --- formats -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(2026, 12, 4), "04/12/2026"),
        (datetime(2026, 12, 4, 23, 30, tzinfo=UTC), "05/12/2026"),  # already the 5th in Casablanca
        (datetime(2026, 1, 31, 12, 0), "31/01/2026"),  # naive: taken as UTC
        (None, ""),
    ],
)
def test_date_fr(value: date | None, expected: str) -> None:
    assert date_fr(value) == expected


def test_datetime_fr_in_casablanca() -> None:
    assert datetime_fr(datetime(2026, 12, 4, 13, 5, tzinfo=UTC)) == "04/12/2026 14:05"
    assert datetime_fr(None) == ""


@pytest.mark.parametrize(
    ("centimes", "expected"),
    [
        (123450, f"1{NBSP}234,50{NBSP}MAD"),
        (-123450, f"-1{NBSP}234,50{NBSP}MAD"),
        (5, f"0,05{NBSP}MAD"),
        (0, f"0,00{NBSP}MAD"),
        (123456789, f"1{NBSP}234{NBSP}567,89{NBSP}MAD"),
        (None, ""),
    ],
)
def test_montant_fr(centimes: int | None, expected: str) -> None:
    assert montant_fr(centimes) == expected


def test_nombre_and_pourcentage_fr() -> None:
    assert nombre_fr(1234.5) == f"1{NBSP}234,5"
    assert nombre_fr(1234567, 0) == f"1{NBSP}234{NBSP}567"
    assert nombre_fr(2.675, 2) == "2,68"
    assert nombre_fr(-0.04) == "0,0"
    assert nombre_fr(-1234.56, 1) == f"-1{NBSP}234,6"
    assert nombre_fr(None) == ""
    assert pourcentage_fr(0.9234) == f"92,3{NBSP}%"
    assert pourcentage_fr(1) == f"100,0{NBSP}%"
    assert pourcentage_fr(0.5, 0) == f"50{NBSP}%"
    assert pourcentage_fr(None) == ""


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        (0, "0 min"),
        (45, "45 min"),
        (59.6, "1 h 00"),
        (125, "2 h 05"),
        (23 * 60 + 59, "23 h 59"),
        (3 * 24 * 60 + 4 * 60 + 10, "3 j 4 h"),
        (24 * 60, "1 j 0 h"),
        (None, ""),
    ],
)
def test_duree_fr(minutes: float | None, expected: str) -> None:
    assert duree_fr(minutes) == expected


def test_labels() -> None:
    assert LIBELLES_STATUT["cloturee"] == "Clôturée"
    assert LIBELLES_STATUT["en_attente"] == "En attente"
    assert LIBELLES_TYPE["preventive"] == "Préventive"
    assert LIBELLES_PRIORITE["programmee"] == "Programmée"
    assert len(LIBELLES_STATUT) == 7
    assert len(LIBELLES_TYPE) == 4
    assert len(LIBELLES_PRIORITE) == 5


# --- work order --------------------------------------------------------------------------------------------------


def _bon(**changes: Any) -> BonIntervention:
    bon = BonIntervention(
        numero=1042,
        titre="Fuite sur la vanne d'admission",
        type="corrective",
        priorite="urgente",
        statut="cloturee",
        description="Fuite constatée au démarrage.",
        client="Atlas Industries",
        client_adresse="12 rue de Fès, Casablanca",
        equipement="Pompe centrifuge P-12",
        equipement_reference="EQ-0012",
        localisation="Atelier 3",
        technicien="Karim Benali",
        date_creation=T0,
        date_limite=T0 + timedelta(days=2),
        date_debut=T0 + timedelta(hours=1),
        date_cloture=T0 + timedelta(hours=3, minutes=5),
        duree_minutes=125,
        rapport="Joint remplacé.\n\nEssai sous pression concluant.",
        historique=[
            LigneHistorique(T0 + timedelta(days=i), f"Étape {i}", "en_cours", "Karim Benali", None) for i in range(40)
        ],
        checklist=[
            EtapeChecklist(1, "Pression de refoulement", "mesure", True, "14 bar", True),
            EtapeChecklist(2, "Joint en place", "oui_non", False, "Oui", False),
        ],
        pieces=[
            LignePiece("JT-12", "Joint torique", 2, "u", 4500),
            LignePiece("HU-01", "Huile hydraulique", 1.5, "L", 118950),
        ],
        cout_main_oeuvre=0,
        cout_pieces=123450,
        cout_total=123450,
        documents=[DocumentJoint("photo-vanne.jpg", "photo", 123456, T0)],
        genere_le=T0 + timedelta(days=45),
    )
    return replace(bon, **changes)


def _text(pdf: bytes) -> tuple[pypdf.PdfReader, str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return reader, text.replace(NBSP, " ")


def test_work_order_shows_every_block() -> None:
    reader, text = _text(render_work_order(_bon()))

    assert "MIF Maroc — Bon d'intervention n° 1042" in text
    assert "Atlas Industries" in text
    assert "Corrective" in text
    assert "Urgente" in text
    assert "Clôturée" in text
    assert "04/12/2026 09:00" in text  # created, in Casablanca time
    assert "06/12/2026" in text  # date limite
    assert "2 h 05" in text
    assert "Pompe centrifuge P-12" in text
    assert "EQ-0012" in text
    assert "Karim Benali" in text
    assert "Essai sous pression concluant." in text
    assert "HORS LIMITES" in text
    assert "Conforme" in text
    assert "photo-vanne.jpg" in text
    for label in ("Main-d'œuvre", "Pièces", "Total", "1 234,50 MAD", "1 189,50 MAD", "0,00 MAD", "45,00 MAD"):
        assert label in text
    assert "Signature du technicien" in text
    assert "Signature du client" in text
    assert "Date : ____ / ____ / ________" in text
    assert "Généré le 18/01/2027 09:00" in text
    pages = len(reader.pages)
    assert pages >= 2
    for number in range(1, pages + 1):
        assert f"Page {number} / {pages}" in text


def test_work_order_timeline_has_every_row() -> None:
    _, text = _text(render_work_order(_bon()))

    for i in range(40):
        assert f"Étape {i}\n" in text
        assert datetime_fr(T0 + timedelta(days=i)) in text
    assert "12/01/2027 09:00" in text  # the last row, 39 days later


def test_work_order_survives_hostile_text() -> None:
    bon = _bon(
        titre=HOSTILE,
        description=HOSTILE,
        client="Société <Atlas> & Fils 🔧",
        equipement=HOSTILE,
        rapport=HOSTILE + "\n\n" + HOSTILE + "\x00\x07\r\n",
        historique=[LigneHistorique(T0, HOSTILE, "inconnu", HOSTILE, HOSTILE)],
        checklist=[EtapeChecklist(1, HOSTILE, HOSTILE, True, HOSTILE, True)],
        pieces=[LignePiece(HOSTILE, HOSTILE, 1, HOSTILE, 100)],
        documents=[DocumentJoint(HOSTILE, HOSTILE, None, None)],
        technicien=None,
        date_limite=None,
        date_cloture=None,
        duree_minutes=None,
        cout_main_oeuvre=None,
    )

    reader, text = _text(render_work_order(bon))

    assert "<b>gras</b> & \"guillemets\" 'apostrophes' <script>x</script> ??" in text
    assert "Société <Atlas> & Fils ?" in text
    assert "AAAAAAAAAA" in text
    assert "HORS LIMITES" in text
    assert "Non affecté" in text
    assert "inconnu" in text  # an unknown status is shown as is
    assert "Signature du client" in text
    assert len(reader.pages) > 2


def test_work_order_without_lists() -> None:
    bon = _bon(historique=[], checklist=[], pieces=[], documents=[], rapport=None, description=None, client=None)

    reader, text = _text(render_work_order(bon))

    assert len(reader.pages) == 1
    assert "Aucun événement enregistré." in text
    assert "Aucun compte rendu." in text
    assert "Aucune checklist." in text
    assert "Aucune pièce consommée." in text
    assert "Aucun document joint." in text
    assert "Page 1 / 1" in text


# --- monthly report ----------------------------------------------------------------------------------------------


def _rapport(lignes: int) -> RapportMensuel:
    mois = [date(2025, 12, 1), *(date(2026, m, 1) for m in range(1, 12))]
    serie = [PointMensuel(m, 40 + i, 35 + i, 10 + i % 4, 30 + i, 0 if i == 3 else 36) for i, m in enumerate(mois)]
    types = ("corrective", "preventive", "ameliorative", "diagnostic")
    interventions = [
        LigneIntervention(
            numero=5000 + i,
            titre=f"Remplacement du joint <{i}> & essai 🔧",
            equipement="Pompe centrifuge P-12",
            type=types[i % 4],
            priorite="normale",
            statut="cloturee",
            date_creation=datetime(2026, 11, 1, 8, tzinfo=UTC) + timedelta(minutes=60 * i),
            date_cloture=None if i % 5 == 0 else datetime(2026, 11, 2, 8, tzinfo=UTC),
            duree_minutes=125,
            cout_total=123450,
            sla_respecte=None if i % 7 == 0 else i % 3 != 0,
        )
        for i in range(lignes)
    ]
    return RapportMensuel(
        client="Atlas Industries",
        mois=date(2026, 11, 1),
        indicateurs=[("MTTR", "3 h 10"), ("Disponibilité", f"98,2{NBSP}%"), ("Coût total", montant_fr(12345600))],
        serie=serie,
        interventions=interventions,
        genere_le=datetime(2026, 12, 1, 6, tzinfo=UTC),
    )


def test_monthly_report_pages_text_and_charts() -> None:
    out = io.BytesIO()
    pages = render_monthly_report(_rapport(600), out)

    reader, text = _text(out.getvalue())
    assert pages == len(reader.pages)
    assert pages > 5
    assert "Rapport mensuel de maintenance — Atlas Industries — novembre 2026" in text.replace("\n", " ")
    for value in ("MTTR", "3 h 10", "Disponibilité", "98,2 %", "123 456,00 MAD"):
        assert value in text
    assert "Interventions du mois (600)" in text
    assert "5000\n" in text
    assert "5599\n" in text
    assert "Préventive" in text
    assert "1 234,50" in text
    assert "Généré le 01/12/2026 07:00" in text
    assert f"Page {pages} / {pages}" in text
    # The header row is repeated on every page of the table.
    assert text.count("Coût (MAD)") == pages - 1
    images = [
        xobject.get_object()
        for xobject in reader.pages[0]["/Resources"]["/XObject"].values()
        if xobject.get_object()["/Subtype"] == "/Image"
    ]
    assert len(images) == 3
    assert all(image["/Width"] >= 1000 for image in images)  # ~150 dpi over the frame's width


def test_charts_are_small_pngs() -> None:
    mois = [date(2026, m, 1) for m in range(1, 13)]

    pngs = [
        charts.barres_interventions(mois, list(range(12)), list(range(12))),
        charts.courbe_backlog(mois, [3] * 12),
        charts.barres_sla(mois, [None, *([0.9] * 11)]),
    ]

    for png in pngs:
        assert png.startswith(b"\x89PNG")
        assert len(png) <= 1024 * 1024


def test_monthly_report_without_data() -> None:
    rapport = replace(_rapport(0), serie=[], indicateurs=[])
    out = io.BytesIO()

    pages = render_monthly_report(rapport, out)

    _, text = _text(out.getvalue())
    assert pages == 2
    assert "Aucune intervention ce mois-ci." in text
    assert "Aucune donnée sur la période." in text

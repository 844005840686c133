"""The PDF work order of one intervention: what was done, by whom, with what, signed by both sides."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Paragraph, Spacer, Table, TableStyle

from mif_reports._pdf import (
    ALERT,
    FONT_BOLD,
    FRAME_WIDTH,
    GRID,
    HEADER_FILL,
    cles_valeurs,
    construire,
    grille,
    para,
    texte_sur,
)
from mif_reports.formats import (
    LIBELLES_PRIORITE,
    LIBELLES_STATUT,
    LIBELLES_TYPE,
    date_fr,
    datetime_fr,
    duree_fr,
    heure_locale,
    libelle,
    montant_fr,
    nombre_fr,
)


@dataclass(frozen=True, slots=True)
class LigneHistorique:
    """One event of the intervention's timeline."""

    horodatage: datetime
    action: str
    statut: str | None
    utilisateur: str | None
    remarque: str | None


@dataclass(frozen=True, slots=True)
class EtapeChecklist:
    """One step of the checklist as the technician filled it."""

    ordre: int
    libelle: str
    type: str
    obligatoire: bool
    resultat: str
    hors_limites: bool


@dataclass(frozen=True, slots=True)
class LignePiece:
    """A part consumed by the intervention; `cout` in centimes."""

    reference: str
    nom: str
    quantite: float
    unite: str
    cout: int


@dataclass(frozen=True, slots=True)
class DocumentJoint:
    """A document attached to the intervention; `taille` in bytes."""

    nom: str
    categorie: str | None
    taille: int | None
    date: datetime | None


@dataclass(frozen=True, slots=True)
class BonIntervention:
    """Everything the work order shows; amounts in centimes, datetimes aware."""

    numero: int
    titre: str
    type: str
    priorite: str
    statut: str
    description: str | None
    client: str | None
    client_adresse: str | None
    equipement: str
    equipement_reference: str | None
    localisation: str | None
    technicien: str | None
    date_creation: datetime
    date_limite: datetime | None
    date_debut: datetime | None
    date_cloture: datetime | None
    duree_minutes: int | None
    rapport: str | None
    historique: Sequence[LigneHistorique]
    checklist: Sequence[EtapeChecklist]
    pieces: Sequence[LignePiece]
    cout_main_oeuvre: int | None
    cout_pieces: int | None
    cout_total: int | None
    documents: Sequence[DocumentJoint]
    genere_le: datetime


def _titre_document(bon: BonIntervention) -> str:
    return f"MIF Maroc — Bon d'intervention n° {bon.numero}"


def _section(titre: str) -> Paragraph:
    return para(titre, "h2", None)


def _vide(message: str) -> Paragraph:
    return para(message, "body", None)


def _entete(bon: BonIntervention) -> list[Flowable]:
    story: list[Flowable] = [para(_titre_document(bon), "title", None)]
    client = texte_sur(bon.client, 300) or "Client non renseigné"
    story.append(para(f"Client : {client}", "subtitle", None))
    if bon.client_adresse:
        story.append(para(bon.client_adresse, "subtitle", 500))
    story.append(para(bon.titre, "h2", 3000))
    return story


def _intervention(bon: BonIntervention) -> list[Flowable]:
    story: list[Flowable] = [_section("Intervention")]
    story.append(
        cles_valeurs(
            [
                ("Type", libelle(LIBELLES_TYPE, bon.type)),
                ("Priorité", libelle(LIBELLES_PRIORITE, bon.priorite)),
                ("Statut", libelle(LIBELLES_STATUT, bon.statut)),
                ("Créée le", datetime_fr(bon.date_creation)),
                ("Date limite", date_fr(bon.date_limite)),
                ("Début", datetime_fr(bon.date_debut)),
                ("Clôture", datetime_fr(bon.date_cloture)),
                ("Durée", duree_fr(bon.duree_minutes)),
            ]
        )
    )
    if bon.description:
        story += [Spacer(1, 2 * mm), para("Description", "cell_bold", None), *_paragraphes(bon.description)]
    return story


def _equipement_technicien(bon: BonIntervention) -> list[Flowable]:
    return [
        _section("Équipement"),
        cles_valeurs(
            [
                ("Équipement", bon.equipement),
                ("Référence", bon.equipement_reference),
                ("Localisation", bon.localisation),
            ],
            colonnes=1,
        ),
        _section("Technicien"),
        cles_valeurs([("Technicien", bon.technicien or "Non affecté")], colonnes=1),
    ]


def _chronologie(bon: BonIntervention) -> list[Flowable]:
    story: list[Flowable] = [_section("Chronologie")]
    if not bon.historique:
        return [*story, _vide("Aucun événement enregistré.")]
    lignes: list[list[Flowable | str]] = [["Date", "Action", "Statut", "Par", "Remarque"]]
    for ligne in sorted(bon.historique, key=lambda h: heure_locale(h.horodatage)):  # naive and aware mixed
        lignes.append(
            [
                datetime_fr(ligne.horodatage),
                para(ligne.action, limite=300),
                para(libelle(LIBELLES_STATUT, ligne.statut)),
                para(ligne.utilisateur, limite=200),
                para(ligne.remarque, limite=1500),
            ]
        )
    largeurs = [27 * mm, 38 * mm, 22 * mm, 30 * mm]
    return [*story, grille(lignes, [*largeurs, FRAME_WIDTH - sum(largeurs)])]


def _paragraphes(texte: str) -> list[Flowable]:
    # One flowable per paragraph, so a long report splits across pages instead of overflowing one.
    blocs = [b.strip() for b in texte.replace("\r\n", "\n").split("\n\n")]
    return [para(b, "body", None) for b in blocs if b]


def _compte_rendu(bon: BonIntervention) -> list[Flowable]:
    story: list[Flowable] = [_section("Compte rendu")]
    paragraphes = _paragraphes(bon.rapport or "")
    return story + (paragraphes or [_vide("Aucun compte rendu.")])


def _checklist(bon: BonIntervention) -> list[Flowable]:
    story: list[Flowable] = [_section("Checklist")]
    if not bon.checklist:
        return [*story, _vide("Aucune checklist.")]
    lignes: list[list[Flowable | str]] = [["N°", "Étape", "Type", "Obligatoire", "Résultat", "Contrôle"]]
    alertes: list[tuple[object, ...]] = []
    for index, etape in enumerate(sorted(bon.checklist, key=lambda e: e.ordre), start=1):
        controle = para("HORS LIMITES", "cell_alert") if etape.hors_limites else para("Conforme")
        if etape.hors_limites:
            alertes.append(("BOX", (0, index), (-1, index), 1, ALERT))
        lignes.append(
            [
                str(etape.ordre),
                para(etape.libelle, limite=600),
                para(etape.type.replace("_", " ").capitalize(), limite=60),
                "Oui" if etape.obligatoire else "Non",
                para(etape.resultat, limite=600),
                controle,
            ]
        )
    largeurs = [10 * mm, 0.0, 22 * mm, 20 * mm, 45 * mm, 25 * mm]
    largeurs[1] = FRAME_WIDTH - sum(largeurs)
    return [*story, grille(lignes, largeurs, extra=alertes)]


def _quantite(piece: LignePiece) -> str:
    decimales = 0 if float(piece.quantite).is_integer() else 2
    return f"{nombre_fr(piece.quantite, decimales)} {texte_sur(piece.unite, 20)}".strip()


def _pieces_couts(bon: BonIntervention) -> list[Flowable]:
    story: list[Flowable] = [_section("Pièces et coûts")]
    lignes: list[list[Flowable | str]] = [["Référence", "Désignation", "Quantité", "Coût"]]
    for piece in bon.pieces:
        lignes.append(
            [para(piece.reference, limite=80), para(piece.nom, limite=400), _quantite(piece), montant_fr(piece.cout)]
        )
    if not bon.pieces:
        lignes.append(["", para("Aucune pièce consommée."), "", ""])
    premier_total = len(lignes)
    for label, montant in (
        ("Main-d'œuvre", bon.cout_main_oeuvre),
        ("Pièces", bon.cout_pieces),
        ("Total", bon.cout_total),
    ):
        lignes.append(["", "", label, montant_fr(montant) or "—"])
    largeurs = [32 * mm, 0.0, 30 * mm, 32 * mm]
    largeurs[1] = FRAME_WIDTH - sum(largeurs)
    totaux = [
        ("ALIGN", (2, 1), (-1, -1), "RIGHT"),
        ("SPAN", (0, premier_total), (1, -1)),
        ("BACKGROUND", (2, premier_total), (-1, -1), HEADER_FILL),
        ("FONT", (2, premier_total), (-1, -1), FONT_BOLD, 8),
        ("LINEABOVE", (0, -1), (-1, -1), 1, GRID),
    ]
    return [*story, grille(lignes, largeurs, extra=totaux)]


def _taille(octets: int | None) -> str:
    if octets is None:
        return ""
    if octets < 1024:
        return f"{octets} o"
    if octets < 1024 * 1024:
        return f"{nombre_fr(octets / 1024)} Ko"
    return f"{nombre_fr(octets / (1024 * 1024))} Mo"


def _documents(bon: BonIntervention) -> list[Flowable]:
    story: list[Flowable] = [_section("Documents joints")]
    if not bon.documents:
        return [*story, _vide("Aucun document joint.")]
    lignes: list[list[Flowable | str]] = [["Nom", "Catégorie", "Taille", "Date"]]
    for document in bon.documents:
        lignes.append(
            [
                para(document.nom, limite=300),
                para(document.categorie, limite=80),
                _taille(document.taille),
                date_fr(document.date),
            ]
        )
    largeurs = [0.0, 40 * mm, 22 * mm, 24 * mm]
    largeurs[0] = FRAME_WIDTH - sum(largeurs)
    return [*story, grille(lignes, largeurs)]


def _signatures() -> Flowable:
    def bloc(titre: str) -> list[Flowable | str]:
        return [para(titre, "cell_bold", None), "Nom :", "Date : ____ / ____ / ________", "", "Signature :", ""]

    cellules = list(zip(bloc("Signature du technicien"), bloc("Signature du client"), strict=True))
    table = Table(
        [list(c) for c in cellules],
        colWidths=[FRAME_WIDTH / 2] * 2,
        rowHeights=[None, 8 * mm, 8 * mm, 2 * mm, 6 * mm, 22 * mm],
    )
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), "Helvetica", 9),
                ("BOX", (0, 0), (0, -1), 0.6, GRID),
                ("BOX", (1, 0), (1, -1), 0.6, GRID),
                ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
                ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
            ]
        )
    )
    return KeepTogether([_section("Signatures"), table])


def render_work_order(bon: BonIntervention) -> bytes:
    """The work order of one intervention as an A4 PDF."""
    story: list[Flowable] = [
        *_entete(bon),
        *_intervention(bon),
        *_equipement_technicien(bon),
        *_chronologie(bon),
        *_compte_rendu(bon),
        *_checklist(bon),
        *_pieces_couts(bon),
        *_documents(bon),
        Spacer(1, 6 * mm),
        _signatures(),
    ]
    out = io.BytesIO()
    client = texte_sur(bon.client, 120)
    entete = f"{_titre_document(bon)} — {client}" if client else _titre_document(bon)
    construire(out, story, titre=_titre_document(bon), entete=entete, genere_le=bon.genere_le)
    return out.getvalue()

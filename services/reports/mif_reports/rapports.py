"""What the two PDF reports hold, gathered: the work order of one intervention (its owners, asked as the
caller, for what no event carries; the read model for names and parts) and the monthly client report
(the read model only)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.datetimes import now
from mif_common.errors import NotFound
from mif_reports import kpis
from mif_reports import sums as kpi_sums
from mif_reports.formats import duree_fr, montant_fr, pourcentage_fr
from mif_reports.models import ClientRef, EquipementRef, InterventionFait, TechnicienRef
from mif_reports.monthly_pdf import LigneIntervention, PointMensuel, RapportMensuel
from mif_reports.owners import DocumentsClient, EtapeLigne, InterventionsClient
from mif_reports.questions import Question, buckets
from mif_reports.work_order_pdf import BonIntervention, DocumentJoint, EtapeChecklist, LigneHistorique, LignePiece

_ACTIONS = {
    "creation": "Création",
    "affectation": "Affectation",
    "desaffectation": "Désaffectation",
    "modification": "Modification",
    "commentaire": "Commentaire",
    "document": "Document",
    "retard": "Échéance dépassée",
    "pieces": "Pièces",
    "checklist": "Checklist",
}
# A statut change is named by where it went (and, back to en_cours, where it came from).
_CHANGEMENTS = {
    "en_cours": "Début des travaux",
    "en_attente": "Pause",
    "cloturee": "Clôture",
    "annulee": "Annulation",
    "archivee": "Archivage",
    "ouverte": "Réouverture",
    "affectee": "Affectation",
}


def _action(action: str, statut: str | None, ancien: str | None) -> str:
    if action == "changement_statut" and statut is not None:
        if statut == "en_cours" and ancien == "en_attente":
            return "Reprise"
        return _CHANGEMENTS.get(statut, statut)
    return _ACTIONS.get(action, action)


class InterventionIntrouvable(NotFound):
    slug = "intervention-not-found"


def _resultat(etape: EtapeLigne) -> str:
    if etape.type == "mesure" and etape.valeur_mesure is not None:
        value = f"{etape.valeur_mesure:g}".replace(".", ",")
        return f"{value} {etape.unite or ''}".strip()
    if etape.type == "verification" and etape.fait is not None:
        return "Oui" if etape.fait else "Non"
    if etape.type == "texte" and etape.texte:
        return etape.texte
    if etape.type == "photo" and etape.document_id is not None:
        return f"Photo (document {etape.document_id})"
    return "—"


async def _noms(
    session: AsyncSession,
    equipement_id: int,
    client_id: int | None,
    technicien_id: int | None,
) -> dict[str, Any]:
    equipement = await session.get(EquipementRef, equipement_id)
    client = await session.get(ClientRef, client_id) if client_id is not None else None
    technicien = await session.get(TechnicienRef, technicien_id) if technicien_id is not None else None
    return {
        "equipement": equipement.nom if equipement else f"Équipement {equipement_id}",
        "equipement_reference": equipement.numero_serie if equipement else None,
        "localisation": equipement.localisation if equipement else None,
        "client": client.nom if client else None,
        "client_adresse": client.ville if client else None,
        "technicien": technicien.nom if technicien else None,
    }


async def bon_intervention(
    session: AsyncSession,
    intervention_id: int,
    *,
    interventions: InterventionsClient,
    documents: DocumentsClient,
    taux_horaire: int,
) -> BonIntervention:
    """The work order as the caller may see it (interventions decides: 404 when it does not show it)."""
    detail = await interventions.detail(intervention_id)
    if detail is None:
        raise InterventionIntrouvable(f"No intervention {intervention_id} that you may see.")
    historique = await interventions.historique(intervention_id)
    etapes = await interventions.checklist(intervention_id)
    joints = await documents.of_intervention(intervention_id)
    fait = await session.get(InterventionFait, intervention_id)
    users = {
        t.user_id: t.nom
        for t in (
            await session.scalars(
                sa.select(TechnicienRef).where(
                    TechnicienRef.user_id.in_({h.user_id for h in historique if h.user_id is not None})
                )
            )
        ).all()
    }
    main_oeuvre = round((detail.duree_reelle or 0) * taux_horaire / 60) if detail.duree_reelle is not None else None
    pieces_cout = detail.cout_pieces if detail.cout_pieces is not None else (fait.cout_pieces if fait else None)
    return BonIntervention(
        numero=detail.id,
        titre=detail.titre,
        type=detail.type,
        priorite=detail.priorite,
        statut=detail.statut,
        description=detail.description,
        **await _noms(session, detail.equipement_id, detail.client_id, detail.technicien_id),
        date_creation=detail.date_creation,
        date_limite=detail.date_limite,
        date_debut=detail.date_debut_travaux,
        date_cloture=detail.date_cloture,
        duree_minutes=detail.duree_reelle,
        rapport=detail.rapport,
        historique=[
            LigneHistorique(
                horodatage=h.horodatage,
                action=_action(h.action, h.statut, h.ancien_statut),
                statut=h.statut,
                utilisateur=(users.get(h.user_id) or f"Utilisateur {h.user_id}") if h.user_id else "Système",
                remarque=h.remarque,
            )
            for h in historique
        ],
        checklist=[
            EtapeChecklist(
                ordre=e.ordre,
                libelle=e.libelle,
                type=e.type,
                obligatoire=e.obligatoire,
                resultat=_resultat(e),
                hors_limites=e.hors_limites,
            )
            for e in etapes
        ],
        pieces=[
            LignePiece(
                reference=str(ligne.get("reference", "")),
                nom=str(ligne.get("nom", "")),
                quantite=float(ligne.get("quantite", 0)),
                unite=str(ligne.get("unite", "")),
                cout=int(ligne.get("cout", 0)),
            )
            for ligne in (fait.pieces_lignes if fait else [])
        ],
        cout_main_oeuvre=main_oeuvre,
        cout_pieces=pieces_cout,
        cout_total=(main_oeuvre or 0) + (pieces_cout or 0) if main_oeuvre is not None or pieces_cout else None,
        documents=[
            DocumentJoint(nom=d.filename, categorie=d.categorie, taille=d.taille, date=d.date_upload) for d in joints
        ],
        genere_le=now(),
    )


def _month_after(mois: date) -> date:
    return (mois.replace(day=28) + timedelta(days=4)).replace(day=1)


def _month_interventions(q: Question, mois: date) -> Any:
    f = InterventionFait
    start = datetime.combine(mois, time(), q.fuseau)
    end = datetime.combine(_month_after(mois), time(), q.fuseau)
    in_month = sa.or_(
        sa.and_(f.date_creation >= start, f.date_creation < end), sa.and_(f.date_cloture >= start, f.date_cloture < end)
    )
    return sa.and_(f.client_id == q.client_id, in_month)


async def count_month(session: AsyncSession, q: Question, mois: date) -> int:
    found = await session.scalar(
        sa.select(sa.func.count()).select_from(InterventionFait).where(_month_interventions(q, mois))
    )
    return int(found or 0)


async def rapport_mensuel(
    session: AsyncSession, q: Question, mois: date, *, taux_horaire: int, minutes_par_jour: int
) -> RapportMensuel:
    """The client's month (`q.client_id` set by the caller's scope or its choice): indicators of the month,
    the 12 months up to it for the charts, and the month's interventions (created or closed in it)."""
    client = await session.get(ClientRef, q.client_id) if q.client_id is not None else None
    month_q = Question(
        du=mois, au=_month_after(mois) - timedelta(days=1), pas="mois", fuseau=q.fuseau, client_id=q.client_id
    )
    mttr = await kpis.mttr(session, month_q)
    sla = await kpis.sla(session, month_q)
    preventive = await kpis.conformite_preventive(session, month_q)
    ftf = await kpis.premiere_resolution(session, month_q)
    costs = await kpis.couts(session, month_q, taux_horaire=taux_horaire, par=None)
    backlog_now = await kpis.backlog(session, month_q)
    indicateurs = [
        ("Interventions clôturées", str(mttr["valeur"]["cloturees"])),
        ("MTTR (début des travaux → clôture)", duree_fr(mttr["valeur"]["mttr_travaux_minutes"])),
        ("MTTR (création → clôture)", duree_fr(mttr["valeur"]["mttr_resolution_minutes"])),
        ("Respect des délais (SLA)", pourcentage_fr(sla["valeur"])),
        ("Conformité préventive", pourcentage_fr(preventive["valeur"])),
        ("Résolution du premier coup", pourcentage_fr(ftf["valeur"])),
        ("Backlog en fin de mois", str(backlog_now["valeur"])),
        ("Coût main-d'œuvre", montant_fr(costs["valeur"]["main_oeuvre"])),
        ("Coût pièces", montant_fr(costs["valeur"]["pieces"])),
        ("Coût total", montant_fr(costs["valeur"]["total"])),
    ]
    first = mois
    for _ in range(11):
        first = (first - timedelta(days=1)).replace(day=1)
    year_q = Question(du=first, au=month_q.au, pas="mois", fuseau=q.fuseau, client_id=q.client_id)
    sums = {
        r["periode"]: r
        for r in await kpi_sums.sums(session, year_q, ("creees", "cloturees", "sla_evaluees", "sla_respectees"))
    }
    backlog_year = {s["periode"]: s["valeur"] for s in (await kpis.backlog(session, year_q))["series"]}
    serie = [
        PointMensuel(
            mois=b,
            interventions=sums.get(b, {}).get("creees", 0),
            cloturees=sums.get(b, {}).get("cloturees", 0),
            backlog=backlog_year.get(b, 0),
            sla_respectes=sums.get(b, {}).get("sla_respectees", 0),
            sla_total=sums.get(b, {}).get("sla_evaluees", 0),
        )
        for b in buckets(year_q)
    ]
    f, e = InterventionFait, EquipementRef
    rows = (
        await session.execute(
            sa.select(f, e.nom)
            .outerjoin(e, e.equipement_id == f.equipement_id)
            .where(_month_interventions(q, mois))
            .order_by(f.date_creation, f.intervention_id)
        )
    ).all()
    lignes = []
    for fait, equipement in rows:
        labour = round((fait.duree_reelle or 0) * taux_horaire / 60) if fait.date_cloture else 0
        lignes.append(
            LigneIntervention(
                numero=fait.intervention_id,
                titre=fait.titre or "",
                equipement=equipement or f"Équipement {fait.equipement_id}",
                type=fait.type or "",
                priorite=fait.priorite or "",
                statut=fait.statut or "",
                date_creation=fait.date_creation or now(),
                date_cloture=fait.date_cloture,
                duree_minutes=fait.duree_reelle,
                cout_total=labour + (fait.cout_pieces or 0) if fait.date_cloture else None,
                sla_respecte=(
                    fait.date_cloture <= fait.date_limite if fait.date_cloture and fait.date_limite else None
                ),
            )
        )
    return RapportMensuel(
        client=client.nom if client else f"Client {q.client_id}",
        mois=mois,
        indicateurs=indicateurs,
        serie=serie,
        interventions=lignes,
        genere_le=now(),
    )

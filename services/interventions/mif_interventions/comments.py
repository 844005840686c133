"""Comments on an intervention."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.datetimes import now
from mif_interventions.models import ActionHistorique, Commentaire
from mif_interventions.service import Auteur, _historiser, get_intervention


async def add_commentaire(session: AsyncSession, *, intervention_id: int, contenu: str, auteur: Auteur) -> Commentaire:
    """A comment by anyone who may see the intervention; it is also a history row."""
    assert auteur.principal is not None
    intervention = await get_intervention(session, intervention_id=intervention_id, principal=auteur.principal)
    at = now()
    commentaire = Commentaire(
        intervention_id=intervention.id, user_id=auteur.principal.user_id, contenu=contenu, date_creation=at
    )
    session.add(commentaire)
    await session.flush()
    _historiser(
        session,
        intervention,
        action=ActionHistorique.commentaire,
        auteur=auteur,
        at=at,
        remarque=contenu,
        apres={"commentaire_id": commentaire.id},
    )
    await session.flush()
    return commentaire

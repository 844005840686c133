"""Which interventions a caller sees, in a service that keeps a replica of them (documents, inventory):
the rule of DOMAIN.md §1 decided from the replica, and the question to interventions when the replica
cannot decide.

A client user sees its organisation's interventions, a technician those assigned to them, a manager
every one. The replica knows an intervention's organisation and technician (planning's id); who that
technician is (a user id) comes from `planning.technicien.*` events. When either is missing, the
service asks interventions as the caller (`InterventionsOwner.fetch`): interventions applies its own
rules, so an answer means "visible".
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from mif_common.auth import Principal, Role
from mif_common.errors import DomainError
from mif_common.owners import OwnerClient

logger = logging.getLogger(__name__)

Answer = TypeVar("Answer", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Scope:
    """A caller's row-level scope: a client user its organisation's interventions, a technician those
    assigned to them, a manager every one (neither set)."""

    client_id: int | None = None
    technicien_user_id: int | None = None

    @property
    def everything(self) -> bool:
        return self.client_id is None and self.technicien_user_id is None


def scope_of(principal: Principal) -> Scope:
    """Decided once for every route (403 for a client account without an organisation)."""
    organisation = principal.organisation()
    if organisation is not None:
        return Scope(client_id=organisation)
    if principal.role is Role.technicien:
        return Scope(technicien_user_id=principal.user_id)
    return Scope()


class InterventionRow(Protocol):
    """What a replica row tells about an intervention's audience."""

    @property
    def client_id(self) -> int | None: ...

    @property
    def technicien_id(self) -> int | None: ...


async def sees(
    scope: Scope, row: InterventionRow, user_of_technicien: Callable[[int], Awaitable[int | None]]
) -> bool | None:
    """Whether the scope sees the replica's intervention; None when the replica cannot tell (its
    technician is not known to be anyone yet): then ask interventions."""
    if scope.everything:
        return True
    if scope.client_id is not None:
        return row.client_id == scope.client_id
    if row.technicien_id is None:
        return False
    user_id = await user_of_technicien(row.technicien_id)
    if user_id is None:
        return None
    return user_id == scope.technicien_user_id


class InterventionsOwner(OwnerClient):
    """Asks interventions about one intervention as the caller (its `Authorization`), so that interventions
    applies the caller's own row-level rules. Not a plain `ReadThrough`: whether the replica's row answers
    depends on the caller (`sees`). The service's settings name `interventions_url`."""

    def base_url(self, settings: Any) -> str:
        url: str = settings.interventions_url
        return url

    async def fetch(self, intervention_id: int, model: type[Answer], *, unavailable: DomainError) -> Answer | None:
        """The intervention as the caller sees it (`model`, with an `id`); None when interventions says it
        does not exist or is not visible to the caller; `unavailable` when interventions cannot answer."""
        path = f"/api/v1/interventions/{intervention_id}"
        answer = await self.get(path, model, unavailable=unavailable, absent=(401, 403, 404))
        if answer is not None and getattr(answer, "id", None) != intervention_id:
            logger.warning("intervention read-through: GET %s answered about another intervention", path)
            raise unavailable
        return answer

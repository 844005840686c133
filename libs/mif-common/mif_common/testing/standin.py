"""A small real HTTP server standing in for the owners a service asks on a replica miss (interventions'
and assets' read-through) and for auth (JWKS, token states), in a service's own tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mif_common.testing.processes import free_port

Answer = tuple[int, Any]


@dataclass
class StandIn:
    """A real HTTP server on a free loopback port: `GET /api/v1/interventions/{id}` answers from
    `interventions` (id → JSON body with 200, or a status code; unknown ids 404) and records who
    asked; `GET /api/v1/equipements/{id}` answers from `equipements` the same way;
    `GET /api/v1/auth/.well-known/jwks.json` serves `jwks`; auth's token states know every user
    (active, version 0): the test tokens name users of their choosing."""

    jwks: Mapping[str, Any] = field(default_factory=lambda: {"keys": []})
    interventions: dict[int, Any] = field(default_factory=dict)
    equipements: dict[int, Any] = field(default_factory=dict)
    asked: list[tuple[int, str | None]] = field(default_factory=list)
    decide: Callable[[int, str | None], Answer | None] | None = None
    port: int = field(default_factory=free_port)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, intervention_id: int, *, status: int = 200, **fields: Any) -> None:
        """What interventions says about one intervention from now on."""
        if status != 200:
            self.interventions[intervention_id] = status
            return
        self.interventions[intervention_id] = {
            "id": intervention_id,
            "titre": f"Intervention {intervention_id}",
            "statut": "ouverte",
            "client_id": None,
            "technicien_id": None,
            "equipement_id": 1,
            "date_modification": datetime.now(UTC).isoformat(),
            **fields,
        }

    def answer_equipement(self, equipement_id: int, *, type_: str, status: int = 200) -> None:
        """What assets says about one equipment from now on."""
        self.equipements[equipement_id] = (
            status
            if status != 200
            else {
                "id": equipement_id,
                "nom": f"Equipement {equipement_id}",
                "type": type_,
                "date_modification": datetime.now(UTC).isoformat(),
            }
        )

    def _app(self) -> Starlette:
        async def intervention(request: Request) -> Response:
            intervention_id = int(request.path_params["id"])
            authorization = request.headers.get("authorization")
            self.asked.append((intervention_id, authorization))
            decided = self.decide(intervention_id, authorization) if self.decide else None
            status, body = decided if decided is not None else self._stored(intervention_id)
            if status != 200:
                return JSONResponse({"status": status, "detail": "stand-in"}, status_code=status)
            return JSONResponse(body)

        async def equipement(request: Request) -> Response:
            stored = self.equipements.get(int(request.path_params["id"]), 404)
            if isinstance(stored, int):
                return JSONResponse({"status": stored, "detail": "stand-in"}, status_code=stored)
            return JSONResponse(stored)

        async def jwks(_: Request) -> Response:
            return JSONResponse(dict(self.jwks))

        async def token_states(_: Request) -> Response:
            return JSONResponse([])

        async def token_state(request: Request) -> Response:
            return JSONResponse({"user_id": request.path_params["id"], "is_active": True, "token_version": 0})

        return Starlette(
            routes=[
                Route("/api/v1/interventions/{id:int}", intervention),
                Route("/api/v1/equipements/{id:int}", equipement),
                Route("/api/v1/auth/.well-known/jwks.json", jwks),
                Route("/api/v1/auth/internal/token-states", token_states),
                Route("/api/v1/auth/internal/token-states/{id:int}", token_state),
            ]
        )

    def _stored(self, intervention_id: int) -> Answer:
        stored = self.interventions.get(intervention_id, 404)
        return (stored, None) if isinstance(stored, int) else (200, stored)

    async def start(self) -> StandIn:
        config = uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(200):
            if self._server.started:
                return self
            await asyncio.sleep(0.02)
        raise RuntimeError("the stand-in server did not start")

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)

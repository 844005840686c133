"""Per-user token state {is_active, token_version}: cuts off deactivated users and stale roles at once.

auth bumps a user's `token_version` when its role changes (and may on any other change); access
tokens carry the version they were issued at in the `tv` claim. The gateway refuses a token whose
user is inactive or whose `tv` is below the user's current version.

State comes from a snapshot (`GET {auth}/api/v1/auth/internal/token-states`, retried in the
background while auth is down, fetched again after every broker reconnection) and from auth's
`auth.user.*` events on an exclusive, auto-delete queue of this replica. The subscription is made
before the snapshot is requested, so no change falls between the two. Updates never lower a known
version; at an equal version the event (the newer news) wins, and a snapshot may only deactivate.
A user the gateway has never heard of passes (the signature and expiry were checked): auth may be
down at startup, and the token's own lifetime is short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import httpx
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError

from mif_common.auth.principal import Principal
from mif_common.events.broker import Broker
from mif_common.events.envelope import CloudEvent
from mif_common.events.topology import declare_exchanges

logger = logging.getLogger(__name__)

ROUTING_KEY = "auth.user.#"
# Each replica's exclusive queue is `<prefix>.<random id>` (the event catalogue documents it).
QUEUE_PREFIX = "mif.gateway.revocation"
STATE_EVENT_TYPES = frozenset(
    {"auth.user.created.v1", "auth.user.updated.v1", "auth.user.deactivated.v1", "auth.user.activated.v1"}
)


@dataclass(slots=True)
class UserState:
    is_active: bool
    token_version: int


class TokenStates:
    """The in-memory table and its rules; no I/O."""

    def __init__(self) -> None:
        self.users: dict[int, UserState] = {}
        self.snapshot_loaded = False

    def refusal(self, principal: Principal) -> str | None:
        """Why this principal's token is refused, or None when it may pass."""
        state = self.users.get(principal.user_id)
        if state is None:
            return None
        if not state.is_active:
            return "This account is deactivated."
        if principal.token_version < state.token_version:
            return "This access token was revoked; sign in again."
        return None

    def apply_event(self, user_id: int, *, is_active: bool, token_version: int) -> None:
        state = self.users.get(user_id)
        if state is None or token_version >= state.token_version:
            self.users[user_id] = UserState(is_active, token_version)

    def apply_snapshot(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            user_id, is_active, version = int(row["user_id"]), bool(row["is_active"]), int(row["token_version"])
            state = self.users.get(user_id)
            if state is None or version > state.token_version:
                self.users[user_id] = UserState(is_active, version)
            elif version == state.token_version and not is_active:
                state.is_active = False
        self.snapshot_loaded = True


class RevocationFollower:
    """Keeps `TokenStates` fresh: snapshot over HTTP, then auth's events from RabbitMQ."""

    def __init__(
        self,
        states: TokenStates,
        *,
        broker: Broker,
        http: httpx.AsyncClient,
        token_states_url: str,
        retry_seconds: float = 2.0,
        queue_prefix: str = QUEUE_PREFIX,
    ) -> None:
        self.states = states
        self.broker = broker
        self.http = http
        self.url = token_states_url
        self.retry_seconds = retry_seconds
        self.queue_name = f"{queue_prefix}.{uuid.uuid4().hex[:12]}"
        self.subscribed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._connection: AbstractRobustConnection | None = None

    async def run(self) -> None:
        """Load the snapshot at once; subscribe when the broker is there, then load it again (the
        first one may predate the subscription)."""
        first = self._spawn(self.load_snapshot())
        await self.subscribe()
        first.cancel()
        await self.load_snapshot()

    async def subscribe(self) -> None:
        """Bind this replica's queue to `auth.user.#` (waits for the broker as long as needed)."""
        connection = await self.broker.wait_connected()
        self._connection = connection
        channel = await connection.channel()
        exchange = await declare_exchanges(channel)
        # A unique name of our own rather than a server-generated one: aio_pika's robust channel
        # re-declares the queue under the same name after a reconnection, which `amq.gen-*` forbids.
        queue = await channel.declare_queue(self.queue_name, exclusive=True, auto_delete=True, durable=False)
        await queue.bind(exchange, routing_key=ROUTING_KEY)
        await queue.consume(self.on_message, no_ack=True)
        connection.reconnect_callbacks.add(self._on_reconnect)
        self.subscribed.set()
        logger.info("following auth.user events on %s", self.queue_name)

    def _on_reconnect(self, *_: Any) -> None:
        # Events published while we were disconnected are lost with our exclusive queue: reload.
        self._spawn(self.load_snapshot())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def load_snapshot(self) -> None:
        """Fetch every user's state from auth, retrying until it answers."""
        delay = self.retry_seconds
        while True:
            try:
                response = await self.http.get(self.url)
                response.raise_for_status()
                rows = response.json()
                if not isinstance(rows, list):
                    raise ValueError("token states are not a list")
                self.states.apply_snapshot(rows)
                logger.info("loaded token states of %d users", len(rows))
                return
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                logger.warning("token states unavailable from %s (%s); retrying in %.0fs", self.url, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            event = CloudEvent.model_validate_json(message.body)
        except ValidationError:
            logger.warning("ignoring a message on %s that is not a CloudEvent", message.routing_key)
            return
        if event.type not in STATE_EVENT_TYPES:
            return
        try:
            user_id = int(event.data["user_id"])
            is_active = bool(event.data["is_active"])
            version = int(event.data["token_version"])
        except (KeyError, TypeError, ValueError):
            logger.warning("ignoring %s event %s without user_id/is_active/token_version", event.type, event.id)
            return
        self.states.apply_event(user_id, is_active=is_active, token_version=version)
        logger.info("user %s: active=%s token_version=%s (%s)", user_id, is_active, version, event.type)

    async def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.reconnect_callbacks.discard(self._on_reconnect)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

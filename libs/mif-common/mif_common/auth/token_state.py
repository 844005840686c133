"""Per-user token state {active, token version}: checked on every authenticated request by the gateway
and by every service, so a deactivation, a role change or an organisation's deactivation refuses the
user's tokens everywhere within moments, not at their expiry.

auth bumps a user's `token_version` on every change that must end its access tokens (role, password,
deactivation, reactivation, its organisation deactivated or reactivated); tokens carry the version they
were issued at in the `tv` claim. A token is refused when its user is inactive, when the user is a
client user whose organisation is deactivated (`organisation_active` false), when its `tv` is below the
user's current version, or when its user is unknown to auth.

Each process keeps the table in memory. It comes from a snapshot of every user
(`GET {auth}/api/v1/auth/internal/token-states`, retried in the background while auth is down, fetched
again after every broker reconnection) and from auth's `auth.user.*` events on an exclusive, auto-delete
queue of this process (`mif.token-states.<process>.<random id>`). The subscription is made before the
snapshot is requested, so no change falls between the two. Updates never lower a known version; at an
equal version the event (the newer news) wins, and a snapshot or an answer of auth may only deactivate.

A user the table does not hold (created after the snapshot, its event not here yet) costs one question
to auth (`GET .../token-states/{user_id}`): the answer is remembered; "unknown" is remembered for a
minute and refused (401); no answer is a 503 with `Retry-After`, never a pass. Concurrent requests of
one unknown user share one question. So does a refused token whose version is above the one we know (it
was signed after a reactivation whose event has not arrived yet): asked once per user and version. A
known user costs one dict lookup and no I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import BaseModel, ConfigDict, ValidationError

from mif_common.auth.principal import Principal
from mif_common.errors import ServiceUnavailable, Unauthorized
from mif_common.events.broker import Broker
from mif_common.events.envelope import CloudEvent
from mif_common.events.topology import declare_exchanges
from mif_common.owners import ask_owner
from mif_common.params import MAX_ID

logger = logging.getLogger(__name__)

TOKEN_STATES_PATH = "/api/v1/auth/internal/token-states"
ROUTING_KEY = "auth.user.#"
# Each process's exclusive queue is `<prefix>.<process>.<random id>` (the event catalogue documents it).
QUEUE_PREFIX = "mif.token-states"
STATE_EVENT_TYPES = frozenset(
    {"auth.user.created.v1", "auth.user.updated.v1", "auth.user.deactivated.v1", "auth.user.activated.v1"}
)

DEACTIVATED = "This account is deactivated."
ORGANISATION_DEACTIVATED = "This account's client organisation is deactivated; contact your maintenance provider."
REVOKED = "This access token was revoked; sign in again."
UNKNOWN_USER = "This access token names an account that does not exist."
UNAVAILABLE = "Cannot check this account now: the auth service did not answer. Try again in a moment."
RETRY_AFTER_SECONDS = 5


class TokenStateUnavailable(ServiceUnavailable):
    slug = "token-state-unavailable"

    def __init__(self, detail: str = UNAVAILABLE, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(RETRY_AFTER_SECONDS)})
        super().__init__(detail, **kw)


@dataclass(slots=True)
class UserState:
    is_active: bool
    token_version: int
    # False for a client user whose organisation is deactivated (auth's events and answers say so).
    organisation_active: bool = True

    def refusal(self, token_version: int) -> str | None:
        """Why a token at `token_version` is refused, or None when it may pass."""
        if not self.is_active:
            return DEACTIVATED
        if not self.organisation_active:
            return ORGANISATION_DEACTIVATED
        if token_version < self.token_version:
            return REVOKED
        return None


class TokenStateRow(BaseModel):
    """One user's state as auth serves it (snapshot rows and the per-user answer)."""

    model_config = ConfigDict(extra="ignore")

    user_id: int
    is_active: bool
    token_version: int
    organisation_active: bool = True

    def state(self) -> UserState:
        return UserState(self.is_active, self.token_version, self.organisation_active)


# Asks auth about one user: its state, or None when auth does not know it; raises TokenStateUnavailable.
Lookup = Callable[[int], Awaitable[UserState | None]]


class TokenStates:
    """The in-memory table, its merge rules, and the one question to auth about an unknown user."""

    def __init__(
        self, lookup: Lookup | None = None, *, unknown_ttl_seconds: float = 60.0, max_unknown: int = 10_000
    ) -> None:
        self.users: dict[int, UserState] = {}
        self.snapshot_loaded = False
        self.lookup = lookup
        self.lookups = 0  # questions asked to auth (tests, logs)
        self.unknown_ttl = unknown_ttl_seconds
        self.max_unknown = max_unknown
        self._unknown: dict[int, float] = {}  # user id -> monotonic time until which "unknown" holds
        self._pending: dict[int, asyncio.Future[None]] = {}
        # (user id, token version) of tokens newer than our news that auth was already asked about.
        self._asked_newer: dict[tuple[int, int], None] = {}

    async def check(self, principal: Principal) -> None:
        """Raise `Unauthorized` when the principal's token must be refused, `TokenStateUnavailable` when
        that cannot be known now. The path of a known user: one dict lookup, no I/O."""
        state = self.users.get(principal.user_id)
        if state is None:
            state = await self._resolve(principal.user_id)
        if state.is_active and state.organisation_active and principal.token_version >= state.token_version:
            return
        if principal.token_version > state.token_version:
            # A token newer than our news of its user: signed after a reactivation whose event is still
            # on its way. auth decides (once per user and token version).
            state = await self._newer(principal)
            if state.refusal(principal.token_version) is None:
                return
        raise Unauthorized(state.refusal(principal.token_version) or REVOKED)

    async def _resolve(self, user_id: int) -> UserState:
        until = self._unknown.get(user_id)
        if until is not None:
            if until > time.monotonic():
                raise Unauthorized(UNKNOWN_USER)
            del self._unknown[user_id]
        if self.lookup is None or not 0 < user_id <= MAX_ID:  # no user has an id out of range
            raise Unauthorized(UNKNOWN_USER)
        await self._ask_once(user_id)
        state = self.users.get(user_id)
        if state is None:
            raise Unauthorized(UNKNOWN_USER)
        return state

    async def _newer(self, principal: Principal) -> UserState:
        key = (principal.user_id, principal.token_version)
        if self.lookup is not None and key not in self._asked_newer:
            await self._ask_once(principal.user_id)
            if len(self._asked_newer) >= self.max_unknown:
                self._asked_newer.pop(next(iter(self._asked_newer)))
            self._asked_newer[key] = None
        return self.users[principal.user_id]

    async def _ask_once(self, user_id: int) -> None:
        """Ask auth about `user_id`, sharing the question with every request already waiting for it."""
        pending = self._pending.get(user_id)
        if pending is None:
            pending = asyncio.ensure_future(self._ask(user_id))
            self._pending[user_id] = pending
            pending.add_done_callback(lambda done: self._asked(user_id, done))
        try:
            # Shielded: a caller that goes away does not cancel the question the others wait for.
            await asyncio.shield(pending)
        except TokenStateUnavailable:
            raise TokenStateUnavailable() from None  # one instance per answer, not one shared by all

    def _asked(self, user_id: int, done: asyncio.Future[None]) -> None:
        if self._pending.get(user_id) is done:
            del self._pending[user_id]
        if not done.cancelled():
            done.exception()  # marked as retrieved: the waiters re-raise it, and none may be left

    async def _ask(self, user_id: int) -> None:
        assert self.lookup is not None
        self.lookups += 1
        state = await self.lookup(user_id)
        if state is not None:
            self.apply_answer(user_id, state)
        elif user_id not in self.users:  # an event may have brought it meanwhile
            if len(self._unknown) >= self.max_unknown:
                self._unknown.pop(next(iter(self._unknown)))
            self._unknown[user_id] = time.monotonic() + self.unknown_ttl
            logger.warning("token names user %s, unknown to auth: refused", user_id)

    def apply_event(
        self, user_id: int, *, is_active: bool, token_version: int, organisation_active: bool = True
    ) -> None:
        """An `auth.user.*` event: the newer news wins at an equal version."""
        self._unknown.pop(user_id, None)
        state = self.users.get(user_id)
        if state is None or token_version >= state.token_version:
            self.users[user_id] = UserState(is_active, token_version, organisation_active)

    def apply_answer(self, user_id: int, answer: UserState) -> None:
        """A snapshot row or an answer of auth, possibly older than an event already applied: it never
        lowers a version, and at an equal version it may only deactivate."""
        self._unknown.pop(user_id, None)
        state = self.users.get(user_id)
        if state is None or answer.token_version > state.token_version:
            self.users[user_id] = UserState(answer.is_active, answer.token_version, answer.organisation_active)
        elif answer.token_version == state.token_version:
            state.is_active = state.is_active and answer.is_active
            state.organisation_active = state.organisation_active and answer.organisation_active

    def apply_snapshot(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            parsed = TokenStateRow.model_validate(row)
            self.apply_answer(parsed.user_id, parsed.state())
        self.snapshot_loaded = True


def auth_lookup(http: httpx.AsyncClient, auth_url: str, *, timeout_seconds: float = 3.0) -> Lookup:
    """The question to auth about one user: `GET {auth}/api/v1/auth/internal/token-states/{user_id}`;
    404 means auth does not know the user; no answer or another status is `TokenStateUnavailable`."""
    base = auth_url.rstrip("/") + TOKEN_STATES_PATH

    async def lookup(user_id: int) -> UserState | None:
        row = await ask_owner(
            http,
            f"{base}/{user_id}",
            TokenStateRow,
            authorization=None,
            unavailable=TokenStateUnavailable(),
            timeout_seconds=timeout_seconds,
        )
        return None if row is None else row.state()

    return lookup


class TokenStateFollower:
    """Keeps `TokenStates` fresh: snapshot over HTTP, then auth's events from RabbitMQ."""

    def __init__(
        self,
        states: TokenStates,
        *,
        broker: Broker,
        http: httpx.AsyncClient,
        auth_url: str,
        process: str,
        retry_seconds: float = 2.0,
        queue_prefix: str = QUEUE_PREFIX,
    ) -> None:
        self.states = states
        self.broker = broker
        self.http = http
        self.url = auth_url.rstrip("/") + TOKEN_STATES_PATH
        self.retry_seconds = retry_seconds
        self.queue_name = f"{queue_prefix}.{process}.{uuid.uuid4().hex[:12]}"
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
        """Bind this process's queue to `auth.user.#` (waits for the broker as long as needed)."""
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
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:  # ValidationError is a ValueError
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
            organisation_active = bool(event.data.get("organisation_active", True))
        except (KeyError, TypeError, ValueError):
            logger.warning("ignoring %s event %s without user_id/is_active/token_version", event.type, event.id)
            return
        self.states.apply_event(
            user_id, is_active=is_active, token_version=version, organisation_active=organisation_active
        )
        logger.info(
            "user %s: active=%s organisation_active=%s token_version=%s (%s)",
            user_id,
            is_active,
            organisation_active,
            version,
            event.type,
        )

    async def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.reconnect_callbacks.discard(self._on_reconnect)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

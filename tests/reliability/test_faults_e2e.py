"""Fault scenarios against the real processes (issue 13): a suite of its own (database `..._faults`, a
fresh RabbitMQ vhost), a bounded write load through the gateway, and faults injected underneath it.

a. kill -9 of interventions (a publisher) and of notifications (a consumer), restarted on their port;
b. every broker connection of the vhost closed, twice: relay and consumers reconnect by themselves;
c. every PostgreSQL backend of the database terminated, three times: recovery without a restart;
d. poison messages on the consumers' routing keys: dead-lettered to `<queue>.dlq`, good events go on.

After each scenario the suite settles and the invariants of docs/adr/0001-events.md are checked on the
test database (read-only SQL) and the broker: every write the gateway acknowledged is there, every outbox
row is published, every consumer that handles an event type has exactly one inbox row for each such event,
the effects (notifications per event and user, the planning and notifications replicas) happened exactly
once, and nothing good was dead-lettered. Answers during a fault are checked against what the scenario
allows; a 500 is never allowed.

Bounded: a few writers for a few seconds, a request cap per writer, every request with a timeout, only
127.0.0.1. `MIF_CHAOS=1` (`make chaos`) runs the longer variant: more writers, longer load, more rounds.
Counts (requests sent, faults injected, writes checked, 5xx seen) are printed per scenario and in total.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import asyncpg
import httpx
import pytest

from mif_common.events.catalogue.discovery import service_consumer
from mif_common.events.topology import EVENTS_EXCHANGE, consumer_queue_name, dead_letter_queue_name
from mif_common.suite import built_services
from mif_common.testing.infra import Infra
from mif_common.testing.plugin import TestDatabase
from tests.support import ADMIN_EMAIL, Suite, own_suite, post_until_created, wait_for

CHAOS = os.environ.get("MIF_CHAOS", "") not in ("", "0")


@dataclass(frozen=True)
class Budget:
    writers: int  # concurrent writers through the gateway
    load_seconds: float  # the load lasts at least this long in each fault scenario
    max_requests: int  # per writer and scenario: the load stops by itself
    kill_rounds: int  # rounds of kill -9 (each kills every victim once)
    broker_rounds: int  # rounds of closing every broker connection of the vhost
    database_rounds: int  # rounds of terminating every backend of the database


BUDGET = Budget(8, 40.0, 4000, 3, 5, 8) if CHAOS else Budget(4, 10.0, 500, 1, 2, 3)
SETTLE_SECONDS = 120.0 if CHAOS else 60.0  # for every outbox row published and consumed afterwards
REQUEST_TIMEOUT = 15.0  # the client's; the gateway answers 504 after its upstream timeout (below) first
KILL_VICTIMS = ("interventions", "notifications", "planning") if CHAOS else ("interventions", "notifications")

# Debian installs it in /usr/sbin, which a user's (or `env -i`'s) PATH may not hold.
RABBITMQCTL = shutil.which("rabbitmqctl") or next(
    (path for path in ("/usr/sbin/rabbitmqctl",) if os.access(path, os.X_OK)), None
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("own-suite"),  # tests/conftest.py: one suite of their own at a time
    pytest.mark.timeout(1800 if CHAOS else 300),
    pytest.mark.skipif(
        os.environ.get("MIF_TEST_CONTAINERS") == "1" or RABBITMQCTL is None,
        reason="fault injection drives the local RabbitMQ with rabbitmqctl",
    ),
]

Headers = dict[str, str]

# The workflow the writers drive, and how far along each statut is.
RANK = {"ouverte": 0, "affectee": 1, "en_cours": 2, "cloturee": 3}
MOVES = (("affecter", "affectee"), ("demarrer", "en_cours"), ("cloturer", "cloturee"))


# --- counts ------------------------------------------------------------------------------------------


@dataclass
class Tally:
    requests: int = 0
    faults: int = 0
    writes_checked: int = 0
    five_xx: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    fault_log: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.requests += other.requests
        self.faults += other.faults
        self.writes_checked += other.writes_checked
        self.five_xx += other.five_xx
        self.statuses.update(other.statuses)

    def line(self, name: str) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return (
            f"[faults] {name}: requests sent {self.requests}, faults injected {self.faults}, "
            f"writes checked {self.writes_checked}, 5xx seen {self.five_xx} ({statuses})"
        )


TOTAL = Tally()


@pytest.fixture(scope="module", autouse=True)
def _print_total(request: pytest.FixtureRequest) -> Iterator[None]:
    """The counts of every scenario that ran, once the module is done (shown even without -s)."""
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        print(f"\n{TOTAL.line('total')}")


def report(tally: Tally, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    TOTAL.add(tally)
    with capsys.disabled():
        print(f"\n{tally.line(name)}")
        for entry in tally.fault_log:
            print(f"[faults]   {entry}")


# --- the infrastructure underneath ---------------------------------------------------------------------


def sql(database: TestDatabase, query: str, *args: Any) -> list[asyncpg.Record]:
    """Read-only checks on the test database, as the superuser (every service's schema)."""

    async def run() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(database.dsn, timeout=10)
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()

    return asyncio.run(run())


def terminate_backends(database: TestDatabase) -> int:
    """pg_terminate_backend for every backend of the test database; how many were terminated."""

    async def run() -> int:
        connection = await asyncpg.connect(database.admin_dsn, timeout=10)
        try:
            count = await connection.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database.name,
            )
            return int(count or 0)
        finally:
            await connection.close()

    return asyncio.run(run())


def connection_usage(database: TestDatabase) -> str:
    """How full PostgreSQL is: every suite on the machine shares its max_connections, and a service that
    cannot get a connection rightly answers 503. Said in failure messages, to tell that from a defect."""
    rows = sql(
        database,
        "SELECT current_setting('max_connections')::int AS max, count(*) AS used, "
        "count(*) FILTER (WHERE datname = current_database()) AS ours FROM pg_stat_activity",
    )
    row = rows[0]
    return f"PostgreSQL connections now: {row['used']} of {row['max']} in use, {row['ours']} by this suite"


def rabbitmqctl(*args: str) -> str:
    assert RABBITMQCTL is not None
    done = subprocess.run([RABBITMQCTL, "-q", *args], check=True, capture_output=True, text=True, timeout=60)
    return done.stdout


def vhost_of(amqp_url: str) -> str:
    return unquote(urlsplit(amqp_url).path.lstrip("/"))


def close_broker_connections(vhost: str) -> int:
    """rabbitmqctl close_connection for every connection of the vhost (in parallel); how many."""
    listed = json.loads(rabbitmqctl("list_connections", "name", "vhost", "--formatter", "json") or "[]")
    names = [c["name"] for c in listed if c["vhost"] == vhost]
    assert RABBITMQCTL is not None
    closing = [
        subprocess.Popen(
            [RABBITMQCTL, "-q", "close_connection", name, "fault injection (tests/reliability)"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in names
    ]
    for proc in closing:
        proc.wait(60)
    return len(names)


def queue_depths(vhost: str) -> dict[str, int]:
    listed = json.loads(rabbitmqctl("list_queues", "-p", vhost, "name", "messages", "--formatter", "json") or "[]")
    return {q["name"]: int(q["messages"]) for q in listed}


def consumers() -> dict[str, frozenset[str]]:
    """Inbox consumer name (= queue) → the event types it handles, from the services' handler tables."""
    found = {}
    for svc in built_services():
        consumer = service_consumer(svc)
        if consumer is not None:
            found[consumer.queue] = consumer.handles
    return found


# --- the suite and its data ------------------------------------------------------------------------------


@dataclass
class World:
    suite: Suite
    vhost: str
    manager: Headers
    manager_id: int
    technicien_id: int
    technicien_user_id: int
    client_user_id: int
    equipement_id: int

    @property
    def database(self) -> TestDatabase:
        return self.suite.database


@pytest.fixture(scope="module")
def faults_suite(
    mif_infra: Infra, mif_fresh_database: Callable[[str], TestDatabase], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Suite]:
    """The whole suite on a database and a vhost of its own: these tests kill and disconnect things."""
    overrides = {
        # A row that failed to publish is retried within 2 s, not a minute: the checks wait for it.
        "MIF_OUTBOX_MAX_BACKOFF": "2",
        # Answer 504 well before the test client's own timeout.
        "MIF_GATEWAY_UPSTREAM_TIMEOUT": "8",
        # The writers are one user sending far more than a person would.
        "MIF_GATEWAY_RATE_USER_PER_WINDOW": "1000000",
        # A handler that keeps failing is parked and retried (mif_common.events.consumer), then
        # dead-lettered: after seconds here instead of 15 minutes, so that scenario d sees it happen.
        "MIF_CONSUMER_RETRY_DELAYS_SECONDS": "[0.5, 1]",
        "MIF_CONSUMER_DEAD_LETTER_AFTER_SECONDS": "8",
    }
    with own_suite(
        mif_infra,
        mif_fresh_database,
        tmp_path_factory,
        label="faults",
        overrides=overrides,
        amqp_options="reconnect_interval=1",  # robust connections come back after 1 s, not aio-pika's 5 s
    ) as suite:
        yield suite


@pytest.fixture(scope="module")
def world(faults_suite: Suite) -> World:
    """A manager, a technician (user and planning profile), a client organisation with one user and one
    equipment; every replica the load relies on is filled before it starts."""
    suite = faults_suite
    admin = suite.login(ADMIN_EMAIL)
    manager_user = suite.create_user(admin, "responsable")
    manager = suite.login(manager_user["username"])
    tech_user = suite.create_user(admin, "technicien")
    with httpx.Client(base_url=suite.url, timeout=10, headers=manager) as http:
        org = http.post("/api/v1/clients", json={"nom_entreprise": f"Fonderie {uuid.uuid4().hex[:6]}"})
        assert org.status_code == 201, org.text
        client_user = suite.create_user(admin, "client", client_id=org.json()["id"])
        equipement = http.post(
            "/api/v1/equipements",
            json={"nom": "Four 1", "type": "four", "localisation": "Hall A", "client_id": org.json()["id"]},
        )
        assert equipement.status_code == 201, equipement.text
    # Planning must know the user first (auth.user.created.v1).
    technicien = post_until_created(suite, manager, "/api/v1/techniciens", {"user_id": tech_user["id"]}, timeout=60)
    technicien_id = technicien["id"]
    world = World(
        suite=suite,
        vhost=vhost_of(suite.amqp_url),
        manager=manager,
        manager_id=manager_user["id"],
        technicien_id=technicien_id,
        technicien_user_id=tech_user["id"],
        client_user_id=client_user["id"],
        equipement_id=equipement.json()["id"],
    )

    def replicas_ready() -> bool:
        rows = sql(
            suite.database,
            "SELECT (SELECT count(*) FROM interventions.technicien_ref WHERE technicien_id = $1)"
            " + (SELECT count(*) FROM interventions.equipement_ref WHERE id = $2)"
            " + (SELECT count(*) FROM notifications.technicien_ref WHERE technicien_id = $1)"
            " + (SELECT count(*) FROM notifications.user_ref WHERE user_id = ANY($3::bigint[]))"
            " + (SELECT count(*) FROM planning.equipement_ref WHERE equipement_id = $2) AS n",
            technicien_id,
            world.equipement_id,
            [world.technicien_user_id, world.client_user_id],
        )
        return int(rows[0]["n"]) == 6

    wait_for(replicas_ready, what="the replicas of interventions, notifications and planning", timeout=60)
    return world


# --- the load ----------------------------------------------------------------------------------------------


@dataclass
class Acked:
    """What the gateway acknowledged about one intervention."""

    statut: str
    writes: int  # acknowledged writes on it: the creation and each move
    unsure: bool = False  # a later write got no acknowledgement: it may or may not have happened


Allowed = Callable[[httpx.Response], bool]


def problem(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("application/problem+json")


class Load:
    """`writers` threads, each creating interventions and moving them through the workflow as the manager,
    until stopped or `max_requests` each; every answer is counted, and held against `allowed`."""

    def __init__(self, world: World, *, writers: int, max_requests: int, allowed: Allowed) -> None:
        self.world = world
        self.writers = writers
        self.max_requests = max_requests
        self.allowed = allowed
        self.acked: dict[int, Acked] = {}
        self.statuses: Counter[str] = Counter()
        self.refused: list[str] = []  # answers outside `allowed` (with their body), connection errors
        self.requests = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._writer, name=f"writer-{n}", daemon=True) for n in range(writers)]
        self.started = 0.0

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run_until(self, seconds: float) -> None:
        """Let the load go on until `seconds` after it started (or until the writers are done)."""
        while time.monotonic() - self.started < seconds and any(t.is_alive() for t in self.threads):
            time.sleep(0.1)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(REQUEST_TIMEOUT * 2)
        assert not any(t.is_alive() for t in self.threads), "a writer did not stop"

    def tally(self) -> Tally:
        five = sum(n for status, n in self.statuses.items() if status.startswith("5"))
        return Tally(requests=self.requests, five_xx=five, statuses=Counter(self.statuses))

    def _send(self, http: httpx.Client, path: str, body: dict[str, Any] | None, headers: Headers) -> httpx.Response:
        with self.lock:
            self.requests += 1
        try:
            response = http.post(path, json=body, headers=headers)
        except httpx.HTTPError as exc:  # the gateway never goes down here: it must always answer
            with self.lock:
                self.statuses["no answer"] += 1
                self.refused.append(f"POST {path}: no answer ({exc!r})")
            raise
        with self.lock:
            self.statuses[str(response.status_code)] += 1
            if not self.allowed(response):
                retry_after = response.headers.get("retry-after")
                self.refused.append(
                    f"POST {path} → {response.status_code} {response.headers.get('content-type')} "
                    f"Retry-After={retry_after}: {response.text[:300]}"
                )
        return response

    def _writer(self) -> None:
        world = self.world
        sent = 0
        with httpx.Client(base_url=world.suite.url, timeout=REQUEST_TIMEOUT, headers=world.manager) as http:
            while not self.stopping.is_set() and sent < self.max_requests:
                sent += 1
                creation = {"titre": f"Fuite {uuid.uuid4().hex[:6]}", "type": "corrective"}
                try:
                    created = self._send(
                        http,
                        "/api/v1/interventions",
                        {**creation, "equipement_id": world.equipement_id},
                        {"Idempotency-Key": f"faults-{uuid.uuid4().hex}"},
                    )
                except httpx.HTTPError:
                    continue
                if created.status_code != 201:
                    time.sleep(0.2)  # the service is down: do not spin
                    continue
                iid = int(created.json()["id"])
                with self.lock:
                    self.acked[iid] = Acked("ouverte", 1)
                for action, statut in MOVES:
                    if self.stopping.is_set() or sent >= self.max_requests:
                        break
                    sent += 1
                    body: dict[str, Any] | None = None
                    if action == "affecter":
                        body = {"technicien_id": world.technicien_id}
                    elif action == "cloturer":
                        body = {"rapport": "Joint remplacé"}
                    try:
                        moved = self._send(http, f"/api/v1/interventions/{iid}/{action}", body, {})
                    except httpx.HTTPError:
                        moved = None
                    with self.lock:
                        if moved is not None and moved.status_code == 200:
                            self.acked[iid] = Acked(statut, self.acked[iid].writes + 1)
                            continue
                        self.acked[iid].unsure = True
                    time.sleep(0.2)
                    break  # an unacknowledged move leaves the intervention in an unknown state: next one


def during_fault(allowed_5xx: tuple[int, ...], *, retry_after: bool = False) -> Allowed:
    """2xx, or one of `allowed_5xx` as problem+json (with Retry-After when asked); never a 500."""

    def check(response: httpx.Response) -> bool:
        if 200 <= response.status_code < 300:
            return True
        if response.status_code not in allowed_5xx or not problem(response):
            return False
        return not retry_after or bool(response.headers.get("retry-after"))

    return check


# --- the checks ------------------------------------------------------------------------------------------


def settle(world: World, what: str, check: Callable[[], list[Any]], timeout: float = SETTLE_SECONDS) -> None:
    """Wait until `check` finds nothing wrong; fail with what it still finds."""
    deadline = time.monotonic() + timeout
    found = check()
    while found and time.monotonic() < deadline:
        time.sleep(0.5)
        found = check()
    assert not found, f"{what} after {timeout:.0f}s: {len(found)}, e.g. {found[:10]}"


def unpublished(world: World) -> list[Any]:
    rows = []
    for svc in built_services():
        rows += [
            (svc.name, r["id"], r["type"], r["attempts"], r["last_error"])
            for r in sql(
                world.database,
                f'SELECT id::text, type, attempts, last_error FROM "{svc.schema}".outbox WHERE published_at IS NULL',
            )
        ]
    return rows


def missing_inbox_rows(world: World) -> list[Any]:
    """Every outbox row of every service × every consumer that handles its type: one inbox row each."""
    missing = []
    for queue, handles in consumers().items():
        schema = queue.removeprefix("mif.")
        for svc in built_services():
            missing += [
                (queue, svc.name, r["id"], r["type"])
                for r in sql(
                    world.database,
                    f'SELECT o.id::text, o.type FROM "{svc.schema}".outbox o WHERE o.type = ANY($1::text[]) '
                    f'AND NOT EXISTS (SELECT 1 FROM "{schema}".inbox i '
                    "WHERE i.consumer = $2 AND i.event_id = o.id::text)",
                    sorted(handles),
                    queue,
                )
            ]
    return missing


def missing_notifications(world: World) -> list[Any]:
    """Each assignment notifies the technician's user, each start and closure the client's user: once."""
    wanted = {
        "interventions.intervention.assigned.v1": world.technicien_user_id,
        "interventions.intervention.started.v1": world.client_user_id,
        "interventions.intervention.closed.v1": world.client_user_id,
    }
    missing = []
    for event_type, user_id in wanted.items():
        missing += [
            (event_type, r["id"], user_id, r["n"])
            for r in sql(
                world.database,
                "SELECT o.id::text AS id, (SELECT count(*) FROM notifications.notification n "
                "  WHERE n.event_id = o.id::text AND n.user_id = $2) AS n "
                "FROM interventions.outbox o WHERE o.type = $1",
                event_type,
                user_id,
            )
            if r["n"] != 1
        ]
    return missing


def replica_drift(world: World) -> list[Any]:
    """planning's and notifications' replicas of the interventions agree with interventions itself."""
    return [
        (r["id"], r["statut"], r["planning"], r["notifications"])
        for r in sql(
            world.database,
            "SELECT i.id, i.statut, p.statut AS planning, n.statut AS notifications "
            "FROM interventions.intervention i "
            "LEFT JOIN planning.intervention_ref p ON p.intervention_id = i.id "
            "LEFT JOIN notifications.intervention_ref n ON n.intervention_id = i.id "
            "WHERE p.statut IS DISTINCT FROM i.statut OR n.statut IS DISTINCT FROM i.statut",
        )
    ]


def check_acknowledged(world: World, load: Load) -> int:
    """Every acknowledged write is there, through the public API (statut) and the history (one row per
    acknowledged write at least); returns how many writes were checked."""
    with httpx.Client(base_url=world.suite.url, timeout=REQUEST_TIMEOUT, headers=world.manager) as http:
        statuts: dict[int, str] = {}
        offset = 0
        while True:
            page = http.get("/api/v1/interventions", params={"limit": 500, "offset": offset, "sort": "id"})
            assert page.status_code == 200, page.text
            statuts.update({int(i["id"]): i["statut"] for i in page.json()})
            offset += 500
            if offset >= int(page.headers["x-total-count"]):
                break
    history = {
        int(r["intervention_id"]): int(r["n"])
        for r in sql(
            world.database,
            "SELECT intervention_id, count(*) AS n FROM interventions.historique "
            "WHERE intervention_id = ANY($1::bigint[]) GROUP BY intervention_id",
            list(load.acked),
        )
    }
    lost = []
    for iid, acked in load.acked.items():
        statut = statuts.get(iid)
        rank = RANK.get(statut or "", -1)
        reachable = RANK[acked.statut] + (1 if acked.unsure else 0)
        if not (RANK[acked.statut] <= rank <= reachable) or history.get(iid, 0) < acked.writes:
            lost.append((iid, acked, statut, history.get(iid, 0)))
    assert not lost, f"acknowledged writes missing or wrong afterwards: {lost[:10]}"
    return sum(a.writes for a in load.acked.values())


def check_settled(world: World, load: Load | None = None, *, dead_letters_expected: bool = False) -> int:
    """The invariants of the event machinery once the suite is left alone; returns the writes checked."""
    settle(world, "outbox rows never published", lambda: unpublished(world))
    settle(world, "events a consumer never handled (no inbox row)", lambda: missing_inbox_rows(world))
    settle(world, "notifications not made exactly once per event", lambda: missing_notifications(world))
    settle(world, "replicas that disagree with interventions", lambda: replica_drift(world))
    duplicates = sql(
        world.database,
        "SELECT event_id, user_id, count(*) AS n FROM notifications.notification "
        "WHERE event_id IS NOT NULL GROUP BY event_id, user_id HAVING count(*) > 1",
    )
    assert not duplicates, f"an event notified a user twice: {duplicates[:10]}"

    def undrained() -> list[Any]:
        return [(q, n) for q, n in queue_depths(world.vhost).items() if n and not q.endswith(".dlq")]

    settle(world, "messages left in the consumer queues", undrained)
    if not dead_letters_expected:
        dead = {q: n for q, n in queue_depths(world.vhost).items() if q.endswith(".dlq") and n}
        assert not dead, f"good events were dead-lettered: {dead}"
    for svc in (world.suite.gateway, world.suite.auth, world.suite.interventions, world.suite.notifications):
        assert httpx.get(f"{svc.url}/health/ready", timeout=5).status_code == 200, svc.name
    return check_acknowledged(world, load) if load is not None else 0


def pids(suite: Suite) -> dict[str, int | None]:
    procs = (suite.gateway, suite.auth, suite.assets, suite.interventions, suite.planning, suite.notifications)
    return {p.name: p.process.pid if p.process else None for p in (*procs, suite.documents)}


# --- the scenarios -----------------------------------------------------------------------------------------


def test_scheduled_in_its_xdist_group(request: pytest.FixtureRequest, pytestconfig: pytest.Config) -> None:
    """With `--dist loadgroup` (make test), xdist must keep this module and the fuzz suite on one worker, one
    suite of their own at a time: pytest 9.2 silently broke that (pyproject.toml pins below it)."""
    # xdist sets the option only when it distributes (`-n`): a plain `pytest` run has no such option.
    if not getattr(pytestconfig.option, "loadgroup", False):
        pytest.skip("not run with --dist loadgroup")
    assert request.node.nodeid.endswith("@own-suite"), request.node.nodeid


def test_kill_9_of_a_publisher_and_a_consumer_under_load(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    suite, tally = world.suite, Tally()
    victims = [getattr(suite, name) for name in KILL_VICTIMS]
    # interventions down: the gateway says so (503 refused, 502 cut off, 504 too slow), as problem+json.
    with Load(
        world, writers=BUDGET.writers, max_requests=BUDGET.max_requests, allowed=during_fault((502, 503, 504))
    ) as load:
        time.sleep(1.5)
        for round_ in range(BUDGET.kill_rounds):
            for victim in victims:
                victim.kill()
                tally.faults += 1
                at = time.monotonic() - load.started
                time.sleep(1.5)  # the load meets the dead process
                victim.start()  # same port, same database and queue
                tally.fault_log.append(
                    f"round {round_ + 1}: kill -9 {victim.name} at {at:.1f}s, "
                    f"ready again at {time.monotonic() - load.started:.1f}s"
                )
                time.sleep(0.5)
        load.run_until(BUDGET.load_seconds)
    tally.add(load.tally())
    try:
        assert load.acked, "no write was acknowledged at all"
        assert not load.refused, (
            f"{len(load.refused)} answers outside 2xx/502/503/504 problem+json "
            f"({connection_usage(world.database)}): {load.refused[:5]}"
        )
        tally.writes_checked = check_settled(world, load)
    finally:
        report(tally, f"a. kill -9 {' + '.join(KILL_VICTIMS)}", capsys)


def test_broker_connections_closed_under_load(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    suite, tally = world.suite, Tally()
    before = pids(suite)
    # The broker is not on the request path: every write succeeds, its event waits in the outbox.
    with Load(world, writers=BUDGET.writers, max_requests=BUDGET.max_requests, allowed=during_fault(())) as load:
        time.sleep(1.5)
        for round_ in range(BUDGET.broker_rounds):
            closed = close_broker_connections(world.vhost)
            assert closed, "no broker connection to close in the test vhost"
            tally.faults += closed
            tally.fault_log.append(
                f"round {round_ + 1}: closed {closed} connections at {time.monotonic() - load.started:.1f}s"
            )
            time.sleep(2.5)
        load.run_until(BUDGET.load_seconds)
    tally.add(load.tally())
    try:
        assert load.acked, "no write was acknowledged at all"
        assert not load.refused, (
            f"{len(load.refused)} writes failed while the broker was cut off ({connection_usage(world.database)}): "
            f"{load.refused[:5]}"
        )
        tally.writes_checked = check_settled(world, load)
        assert pids(suite) == before, "a process was restarted; recovery must be by reconnection alone"
    finally:
        report(tally, "b. broker connections closed", capsys)


def test_database_backends_terminated_under_load(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    suite, tally = world.suite, Tally()
    before = pids(suite)
    # Lost connections are a 503 with Retry-After (the client retries), never a 500.
    allowed = during_fault((503,), retry_after=True)
    with Load(world, writers=BUDGET.writers, max_requests=BUDGET.max_requests, allowed=allowed) as load:
        time.sleep(1.5)
        for round_ in range(BUDGET.database_rounds):
            terminated = terminate_backends(suite.database)
            tally.faults += terminated
            tally.fault_log.append(
                f"round {round_ + 1}: terminated {terminated} backends at {time.monotonic() - load.started:.1f}s"
            )
            time.sleep(2.0)
        load.run_until(BUDGET.load_seconds)
    tally.add(load.tally())
    try:
        assert load.acked, "no write was acknowledged at all"
        # Every acknowledged write survives and the events settle, whatever the answers were.
        tally.writes_checked = check_settled(world, load)
        assert pids(suite) == before, "a process was restarted; recovery must be by reconnection alone"
        assert not load.refused, (
            f"{len(load.refused)} answers neither 2xx nor 503 problem+json with Retry-After "
            f"({connection_usage(world.database)}): {load.refused[:5]}"
        )
    finally:
        report(tally, "c. database backends terminated", capsys)


@dataclass(frozen=True)
class Poison:
    kind: str
    routing_key: str
    body: bytes
    message_id: str = field(default_factory=lambda: f"poison-{uuid.uuid4()}")


def _envelope(event_type: str, data: Any, **extra: Any) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": f"/mif/{event_type.split('.')[0]}",
            "type": event_type,
            "time": "2025-01-01T00:00:00Z",
            "datacontenttype": "application/json",
            "data": data,
            **extra,
        }
    ).encode()


def poisons_for(routing_key: str) -> list[Poison]:
    """Messages no retry can fix, on a routing key a consumer handles: straight to its DLQ."""
    return [
        Poison("not JSON", routing_key, b"\x00\xff\xfe not json {{{"),
        Poison("JSON, not a CloudEvent", routing_key, json.dumps({"hello": "world", "type": routing_key}).encode()),
        Poison("CloudEvent, data of another shape", routing_key, _envelope(routing_key, {"unexpected": [1, 2, 3]})),
        Poison("CloudEvent, data not an object", routing_key, _envelope(routing_key, "a string")),
    ]


def publish_raw(amqp_url: str, poisons: list[Poison]) -> None:
    async def send() -> None:
        connection = await aio_pika.connect(amqp_url, timeout=10)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
            for poison in poisons:
                message = aio_pika.Message(
                    poison.body, content_type="application/cloudevents+json", message_id=poison.message_id
                )
                await exchange.publish(message, routing_key=poison.routing_key)

    asyncio.run(send())


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    reason: str  # x-death: rejected (by the consumer), delivery_limit (by the quorum queue)
    retries: int  # x-mif-retries: how often the consumer parked it for a later retry first


def drain_dead_letters(amqp_url: str, queue: str) -> list[DeadLetter]:
    """Take every message out of `<queue>.dlq`."""

    async def take() -> list[DeadLetter]:
        taken = []
        connection = await aio_pika.connect(amqp_url, timeout=10)
        async with connection:
            channel = await connection.channel()
            dlq = await channel.get_queue(dead_letter_queue_name(queue), ensure=True)
            while (message := await dlq.get(fail=False, timeout=5)) is not None:
                headers = message.headers or {}
                deaths = headers.get("x-death")
                death = deaths[0] if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else {}
                retries = headers.get("x-mif-retries", 0)
                taken.append(
                    DeadLetter(
                        str(message.message_id),
                        str(death.get("reason", "?")),
                        retries if isinstance(retries, int) else 0,
                    )
                )
                await message.ack()
        return taken

    return asyncio.run(take())


def test_poison_messages_are_dead_lettered_while_good_events_flow(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    suite, tally = world.suite, Tally()
    handled = consumers()
    dead_before = {q: n for q, n in queue_depths(world.vhost).items() if q.endswith(".dlq") and n}
    assert not dead_before, f"dead letters left by an earlier scenario: {dead_before}"
    # One routing key per consumer queue, plus how each queue must treat each message.
    keys = sorted({min(types) for types in handled.values()})
    poisons = [p for key in keys for p in poisons_for(key)]
    # A well-formed event of a type nobody handles, on a key they are bound to: acked and ignored (ADR 9).
    ignored = [Poison("unknown type", key, _envelope("mif.nobody.handles.v9", {})) for key in keys]
    # A valid assignment to a technician notifications has never heard of: it fails every time (not a
    # permanent error: the profile may arrive later), so it goes to the DLQ once the delivery limit is spent.
    phantom = {
        "intervention_id": 9_000_000_000 + uuid.uuid4().int % 1_000_000,
        "equipement_id": world.equipement_id,
        "client_id": None,
        "technicien_id": 9_000_000_000 + uuid.uuid4().int % 1_000_000,
        "statut": "affectee",
        "previous_statut": "ouverte",
        "type": "corrective",
        "priorite": "normale",
        "urgence": False,
        "titre": "Fantôme",
        "actor_id": None,
        "occurred_at": "2025-01-01T00:00:00+00:00",
    }
    assigned = "interventions.intervention.assigned.v1"
    stubborn = Poison("transient failure, every time", assigned, _envelope(assigned, phantom))

    with Load(world, writers=2, max_requests=BUDGET.max_requests, allowed=during_fault(())) as load:
        time.sleep(1.0)
        publish_raw(suite.amqp_url, [*poisons, *ignored, stubborn])
        tally.faults += len(poisons) + len(ignored) + 1
        load.run_until(5.0 if not CHAOS else 20.0)
    tally.add(load.tally())
    try:
        assert load.acked and not load.refused, load.refused[:5]
        tally.writes_checked = check_settled(world, load, dead_letters_expected=True)
        expected = {
            queue: {p.message_id for p in poisons if p.routing_key in types}
            | ({stubborn.message_id} if queue == consumer_queue_name("notifications") else set())
            for queue, types in handled.items()
        }

        def all_there() -> bool:
            depths = queue_depths(world.vhost)
            return all(depths.get(dead_letter_queue_name(q), 0) >= len(ids) for q, ids in expected.items())

        wait_for(all_there, what="every poison message in its queue's DLQ", timeout=60)
        time.sleep(1.0)  # anything extra (a good event, an ignored one) would be there by now too
        for queue, ids in expected.items():
            dead = {d.message_id: d for d in drain_dead_letters(suite.amqp_url, queue)}
            assert set(dead) == ids, (queue, sorted(dead.values(), key=lambda d: d.message_id))
            # What no retry can fix is dead-lettered at once, by the consumer.
            assert all(dead[p].reason == "rejected" and dead[p].retries == 0 for p in ids - {stubborn.message_id})
            if stubborn.message_id in ids:
                # Retried first: parked and handed back by the retry queues (or redelivered up to the quorum
                # queue's delivery limit), only then dead-lettered.
                last = dead[stubborn.message_id]
                assert last.retries >= 1 or last.reason == "delivery_limit", last
            tally.fault_log.append(f"{dead_letter_queue_name(queue)}: {len(dead)} dead letters, as expected")
        assert all(httpx.get(f"{p.url}/health/ready", timeout=5).status_code == 200 for p in pids_procs(suite))
    finally:
        report(tally, "d. poison messages", capsys)


def pids_procs(suite: Suite) -> list[Any]:
    return [suite.gateway, suite.auth, suite.assets, suite.interventions, suite.planning, suite.notifications]

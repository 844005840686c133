"""The notifications service end to end: real auth, assets, interventions, planning, notifications and
gateway processes, real PostgreSQL, RabbitMQ and SMTP server (aiosmtpd).

A new account is welcomed in-app and by e-mail; assigning an intervention at the gateway reaches the
technician's list, live stream and mailbox, and its start reaches the requester; an event delivered
twice gives one notification; e-mails wait out an SMTP outage; nobody reads another user's
notifications."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mif_common.testing.events import envelope
from mif_interventions.testing import intervention_data
from mif_notifications.testing import parts, to_address
from mif_planning.testing import technicien_data
from tests.support import Suite, publish, wait_for

pytestmark = pytest.mark.e2e

Headers = dict[str, str]
API = "/api/v1/notifications"


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def big_id() -> int:
    """An id no real row of the suite will have (these events are published by the test, not by their owner)."""
    return 10**9 + uuid.uuid4().int % 10**8


def mine(http: httpx.Client, headers: Headers, **params: Any) -> list[dict[str, Any]]:
    response = http.get(f"{API}/user/me", params={"limit": 100, **params}, headers=headers)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def about(http: httpx.Client, headers: Headers, intervention_id: int) -> list[dict[str, Any]]:
    return [n for n in mine(http, headers) if n["intervention_id"] == intervention_id]


class SseReader:
    """The live stream through the gateway, read in a background thread's event loop."""

    def __init__(self, url: str, headers: Headers) -> None:
        self.url, self.headers = url, headers
        self.events: list[tuple[float, dict[str, Any]]] = []  # (monotonic time received, event)
        self.connected = False
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.new_event_loop()
        import threading

        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        wait_for(lambda: self.connected, timeout=10, what="the live stream to open")

    async def _start(self) -> None:
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(10, read=60)) as http,
            http.stream("GET", self.url, headers=self.headers) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            self.connected = True
            event: dict[str, Any] = {}
            async for line in response.aiter_lines():
                if line == "":
                    if "data" in event:
                        self.events.append((time.monotonic(), event))
                    event = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(":")
                    event[key] = json.loads(value) if key == "data" else value.strip()

    def close(self) -> None:
        async def cancel() -> None:
            if self._task is not None:
                self._task.cancel()

        asyncio.run_coroutine_threadsafe(cancel(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def test_a_new_account_is_welcomed_in_app_and_by_email(
    suite: Suite, admin_headers: Headers, create_user: Callable[..., Any]
) -> None:
    organisation = httpx.post(
        f"{suite.url}/api/v1/clients", json={"nom_entreprise": unique("Société")}, headers=admin_headers
    )
    assert organisation.status_code == 201, organisation.text
    user = create_user("client", client_id=organisation.json()["id"])
    with suite.client() as http:
        [welcome] = wait_for(lambda: mine(http, user["headers"]), what="the welcome notification")
        assert welcome["titre"] == "Bienvenue sur MIF Maintenance" and welcome["type"] == "information"
        assert welcome["user_id"] == user["id"] and welcome["lue"] is False
        assert http.get(f"{API}/unread-count", headers=user["headers"]).json() == {"count": 1}
        read = http.put(f"{API}/{welcome['id']}/read", headers=user["headers"])
        assert read.status_code == 200 and read.json()["lue"] is True and read.json()["date_lecture"]
        assert mine(http, user["headers"])[0]["lue"] is True  # persisted
        assert http.get(f"{API}/unread-count", headers=user["headers"]).json() == {"count": 0}
    message = suite.smtp.wait_for(lambda m: to_address(m) == user["email"])
    assert message["Subject"] == "[MIF] Bienvenue sur MIF Maintenance"
    text, html = parts(message)
    assert f"Bonjour {user['full_name']}," in text and "Bienvenue sur MIF Maintenance" in html


def test_an_assignment_at_the_gateway_reaches_the_technicians_list_stream_and_mailbox(
    suite: Suite, create_user: Callable[..., Any]
) -> None:
    manager = create_user("responsable")
    tech = create_user("technicien")
    technicien_id = big_id()
    # The technician's profile, as planning announces it (both interventions and notifications keep it).
    publish(suite, envelope("planning.technicien.created.v1", technicien_data(technicien_id, tech["id"])))
    with suite.client() as http:
        wait_for(lambda: mine(http, tech["headers"]), what="the technician's welcome (its user is known)")
        equipement = http.post(
            "/api/v1/equipements",
            json={"nom": unique("Compresseur"), "type": "compresseur", "localisation": "Hall 2"},
            headers=manager["headers"],
        ).json()
        created = http.post(
            "/api/v1/interventions",
            json={"titre": "Fuite d'huile", "type": "corrective", "equipement_id": equipement["id"]},
            headers=manager["headers"],
        )
        assert created.status_code == 201, created.text
        iid = created.json()["id"]

        stream = SseReader(f"{suite.url}{API}/stream", tech["headers"])
        try:

            def assign() -> float | None:
                response = http.post(
                    f"/api/v1/interventions/{iid}/affecter",
                    json={"technicien_id": technicien_id},
                    headers=manager["headers"],
                )
                return time.monotonic() if response.status_code == 200 else None

            assigned_at = wait_for(assign, what="interventions to know the technician")
            received_at, event = wait_for(lambda: next(iter(stream.events), None), timeout=5, what="the SSE event")
        finally:
            stream.close()
        assert event["data"]["type"] == "affectation" and event["data"]["intervention_id"] == iid
        assert event["data"]["titre"] == "Nouvelle intervention affectée : Fuite d'huile"
        assert received_at - assigned_at < 1.0, "the live stream took more than a second"
        [listed] = about(http, tech["headers"], iid)
        assert listed["id"] == int(event["id"]) and listed["type"] == "affectation"
        message = suite.smtp.wait_for(lambda m: to_address(m) == tech["email"] and "Affectation" in m["Subject"])
        assert message["Subject"] == "[MIF] Affectation : Nouvelle intervention affectée : Fuite d'huile"
        text, html = parts(message)
        assert f"L'intervention n°{iid} « Fuite d'huile » vous a été affectée" in text
        assert "Fuite d&#39;huile" in html

        def sent() -> bool:
            [row] = about(http, tech["headers"], iid)
            return row["livraisons"][0]["statut"] == "sent"

        wait_for(sent, what="the e-mail delivery to be recorded as sent")

        # The technician starts the work: the requester (the manager) is told, the technician is not.
        started = http.post(f"/api/v1/interventions/{iid}/demarrer", headers=tech["headers"])
        assert started.status_code == 200, started.text
        [told] = wait_for(lambda: about(http, manager["headers"], iid), what="the requester's notification")
        assert told["titre"] == "Intervention démarrée : Fuite d'huile"
        assert [n["type"] for n in about(http, tech["headers"], iid)] == ["affectation"]


def test_the_same_event_delivered_twice_gives_one_notification(suite: Suite, create_user: Callable[..., Any]) -> None:
    tech = create_user("technicien")
    technicien_id, iid, marker = big_id(), big_id(), big_id()
    equipement_id = big_id()
    created = intervention_data(iid, "ouverte", equipement_id=equipement_id)
    publish(
        suite,
        envelope("planning.technicien.created.v1", technicien_data(technicien_id, tech["id"])),
        envelope("interventions.intervention.created.v1", created),
    )
    assigned = envelope(
        "interventions.intervention.assigned.v1",
        intervention_data(iid, "affectee", technicien_id=technicien_id, equipement_id=equipement_id),
    )
    publish(suite, assigned, assigned)
    publish(
        suite,
        envelope(
            "interventions.intervention.assigned.v1",
            intervention_data(marker, "affectee", technicien_id=technicien_id, equipement_id=equipement_id),
        ),
    )
    with suite.client() as http:
        wait_for(lambda: about(http, tech["headers"], marker), what="the notification published after the duplicate")
        time.sleep(0.5)  # the duplicate, had it been handled twice, would show by now
        assert len(about(http, tech["headers"], iid)) == 1


def test_smtp_down_then_up_the_email_is_delivered_later(
    suite: Suite, admin_headers: Headers, create_user: Callable[..., Any]
) -> None:
    tech = create_user("technicien")
    with suite.client() as http:
        wait_for(lambda: mine(http, tech["headers"]), what="the technician's welcome (its user is known)")
        suite.smtp.stop()
        try:
            sent = http.post(
                API,
                json={"user_id": tech["id"], "titre": "Consignes sécurité", "contenu": "Port du casque obligatoire."},
                headers=admin_headers,
            )
            assert sent.status_code == 201, sent.text
            nid = sent.json()[0]["id"]

            def retrying() -> dict[str, Any] | None:
                delivery = http.get(f"{API}/{nid}", headers=tech["headers"]).json()["livraisons"][0]
                return delivery if delivery["tentatives"] >= 2 else None

            pending = wait_for(retrying, what="failed attempts to be recorded")
            assert pending["statut"] == "pending" and pending["canal"] == "email"
            assert pending["derniere_erreur"].startswith("SMTPConnectError")
            assert pending["prochaine_tentative"] is not None
        finally:
            suite.smtp.start()
        message = suite.smtp.wait_for(lambda m: "Consignes sécurité" in m["Subject"])
        assert to_address(message) == tech["email"]

        def delivered() -> dict[str, Any] | None:
            delivery = http.get(f"{API}/{nid}", headers=tech["headers"]).json()["livraisons"][0]
            return delivery if delivery["statut"] == "sent" else None

        final = wait_for(delivered, what="the delivery to be recorded as sent")
        assert final["tentatives"] >= 3 and final["derniere_erreur"] is None and final["date_envoi"]


def test_another_users_notification_is_404(
    suite: Suite, admin_headers: Headers, create_user: Callable[..., Any]
) -> None:
    owner, other = create_user("technicien"), create_user("technicien")
    with suite.client() as http:
        [welcome] = wait_for(lambda: mine(http, owner["headers"]), what="the owner's welcome")
        nid = welcome["id"]
        for method, path in (("GET", f"{API}/{nid}"), ("PUT", f"{API}/{nid}/read"), ("DELETE", f"{API}/{nid}")):
            for headers in (other["headers"], admin_headers):
                response = http.request(method, path, headers=headers)
                assert response.status_code == 404, (method, path, response.text)
                assert response.headers["content-type"] == "application/problem+json"
        assert http.get(f"{API}/{nid}", headers=owner["headers"]).json()["lue"] is False
        # Sending is for managers only, at the gateway already.
        refused = http.post(API, json={"user_id": owner["id"], "titre": "t", "contenu": "c"}, headers=other["headers"])
        assert refused.status_code == 403
        assert http.delete(f"{API}/{nid}", headers=owner["headers"]).status_code == 204

"""The whole business in one story, through the gateway only (DOMAIN.md §1, §4-§8).

The admin opens accounts for a manager and a technician; the manager signs a client organisation, registers
its compressor, builds the technician's profile and a monthly preventive plan; the plan falls due and
yields one preventive intervention; the client's user reports a breakdown; the manager dispatches it; the
technician is told in-app and by e-mail, starts the work (the compressor goes into `maintenance`), adds a
photo and closes with a report; the client is told and downloads the photo through its signed link; the
technician also does the preventive visit while on site, after which the compressor is `operationnel`
again; the manager archives the request; its history tells every step with its actor, and the client's
dashboard counts exactly what happened.

Everything other e2e tests create lives in the same running suite, so every assertion is scoped to what
this story creates (its organisation, equipment, interventions, users)."""

from __future__ import annotations

import contextlib
import hashlib
import struct
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from mif_auth.testing import PASSWORD
from mif_notifications.testing import parts, to_address
from tests.support import Suite, wait_for

pytestmark = pytest.mark.e2e

Headers = dict[str, str]
Json = dict[str, Any]

# Seconds (= ticks of planning's scheduler in this suite) after the preventive intervention appears before
# checking that no second one came: a duplicate would come from a later pass or a redelivered event.
SCHEDULER_TICKS_TO_WAIT = 3.5


@dataclass
class Account:
    """A user the admin created, logged in."""

    id: int
    username: str
    email: str
    full_name: str
    headers: Headers


def tag() -> str:
    """A suffix that keeps this run's names apart from other tests' (unique names are enforced)."""
    return uuid.uuid4().hex[:6]


def png_photo() -> bytes:
    """A real, decodable 2x2 PNG (signature, IHDR, IDAT, IEND with their CRCs): what a phone would send,
    only smaller."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    width = height = 2
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = b"".join(b"\x00" + bytes([200, 30, 30]) * width for _ in range(height))  # filter byte + pixels
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def ok(response: httpx.Response, step: str, status: int = 200) -> Any:
    """The JSON of a response that must have `status`; otherwise fail naming the step and the answer."""
    assert response.status_code == status, f"{step}: expected {status}, got {response.status_code}: {response.text}"
    return response.json() if response.content else None


# --- step helpers: each does what one person does and checks what that person would see --------------


def admin_creates_user(
    http: httpx.Client, suite: Suite, admin: Headers, role: str, full_name: str, **extra: Any
) -> Account:
    username = f"{role[:4]}-{tag()}"
    body = {
        "username": username,
        "full_name": full_name,
        "email": f"{username}@scenario.mif.ma",
        "role": role,
        "password": PASSWORD,
        **extra,
    }
    user = ok(http.post("/api/v1/users/", json=body, headers=admin), f"step 1: the admin creates the {role}", 201)
    assert user["role"] == role and user["is_active"] is True, f"step 1: {user}"
    account = Account(user["id"], username, body["email"], full_name, suite.login(username))
    me = ok(http.get("/api/v1/auth/me", headers=account.headers), f"step 1: the new {role} logs in")
    assert (me["id"], me["role"]) == (user["id"], role), f"step 1: /auth/me of the {role}: {me}"
    return account


def notifications_about(http: httpx.Client, who: Account, intervention_id: int) -> list[Json]:
    rows = ok(
        http.get("/api/v1/notifications/user/me", params={"limit": 100}, headers=who.headers),
        f"{who.full_name} lists their notifications",
    )
    return [n for n in rows if n["intervention_id"] == intervention_id]


def equipment_statut(http: httpx.Client, headers: Headers, equipement_id: int) -> str:
    return str(ok(http.get(f"/api/v1/equipements/{equipement_id}", headers=headers), "read the equipment")["statut"])


def historique(http: httpx.Client, headers: Headers, intervention_id: int) -> list[Json]:
    rows: list[Json] = ok(
        http.get(f"/api/v1/interventions/{intervention_id}/historique", headers=headers), "read the history"
    )
    return rows


def dashboard(http: httpx.Client, headers: Headers) -> Json:
    stats: Json = ok(http.get("/api/v1/dashboard/stats", headers=headers), "read the dashboard")
    return stats


def wait_for_dashboard(http: httpx.Client, headers: Headers, expected: Json, *, step: str) -> Json:
    """The dashboard's replicas (equipment, users) follow events: poll until the sections in `expected`
    match, then compare once more so a mismatch fails with both values side by side."""

    def sections() -> Json:
        stats = dashboard(http, headers)
        return {key: stats[key] for key in expected}

    with contextlib.suppress(AssertionError):  # on a timeout, the comparison below says what differs
        wait_for(lambda: sections() == expected, what=f"{step}: the dashboard figures", timeout=15)
    actual = sections()
    assert actual == expected, f"{step}: dashboard {actual} != expected {expected}"
    return dashboard(http, headers)


def do_work(http: httpx.Client, tech: Account, intervention_id: int, body: Json, *, step: str) -> Json:
    """The technician starts then closes one intervention."""
    started = ok(http.post(f"/api/v1/interventions/{intervention_id}/demarrer", headers=tech.headers), step)
    assert started["statut"] == "en_cours" and started["date_debut_travaux"], f"{step}: {started}"
    closed: Json = ok(
        http.post(f"/api/v1/interventions/{intervention_id}/cloturer", json=body, headers=tech.headers), step
    )
    assert closed["statut"] == "cloturee" and closed["date_cloture"] and closed["date_fin_travaux"], f"{step}: {closed}"
    return closed


# --- the story -------------------------------------------------------------------------------------------


def test_the_whole_business_from_accounts_to_dashboard(suite: Suite, admin_headers: Headers) -> None:
    began = time.monotonic()
    with suite.client() as http:
        admin = admin_headers

        # 1. The admin opens the staff accounts (the client's user needs its organisation: after step 2a).
        manager = admin_creates_user(http, suite, admin, "responsable", "Salma Bennani")
        tech = admin_creates_user(http, suite, admin, "technicien", "Youssef Alaoui")

        # 2a. The manager signs the client organisation; the admin then opens its user's account (DOMAIN
        # §8: role client takes the organisation's client_id).
        organisation = ok(
            http.post(
                "/api/v1/clients/",
                json={
                    "nom_entreprise": f"Cimenterie de l'Atlas {tag()}",
                    "type_client": "entreprise",
                    "secteur_activite": "Cimenterie",
                    "nom_contact": "Nadia Tazi",
                    "ville": "Settat",
                    "niveau_service": "premium",
                },
                headers=manager.headers,
            ),
            "step 2: the manager creates the client organisation",
            201,
        )
        assert organisation["pays"] == "Maroc" and organisation["is_active"] is True, f"step 2: {organisation}"
        client = admin_creates_user(http, suite, admin, "client", "Nadia Tazi", client_id=organisation["id"])
        names = {manager.id: manager.full_name, tech.id: tech.full_name, client.id: client.full_name}

        # 2b. Its equipment, the technician's profile with competences, a preventive plan already due.
        equipement = ok(
            http.post(
                "/api/v1/equipements/",
                json={
                    "nom": f"Compresseur à vis CV-{tag()}",
                    "type": "compresseur",
                    "localisation": "Atelier broyage",
                    "marque": "Atlas Copco",
                    "criticite": "important",
                    "client_id": organisation["id"],
                    "frequence_entretien": 30,
                },
                headers=manager.headers,
            ),
            "step 2: the manager registers the equipment",
            201,
        )
        assert equipement["statut"] == "operationnel" and equipement["client_id"] == organisation["id"]
        eid = equipement["id"]
        competences = [
            ok(
                http.post(
                    "/api/v1/techniciens/competences/",
                    json={"nom": f"{nom} {tag()}", "domaine": domaine},
                    headers=manager.headers,
                ),
                "step 2: the manager creates a competence",
                201,
            )
            for nom, domaine in (("Pneumatique", "fluides"), ("Électricité industrielle", "électricité"))
        ]
        profile = ok(
            http.post(
                "/api/v1/techniciens/",
                json={
                    "user_id": tech.id,
                    "equipe": "Équipe Centre",
                    "competences_ids": [c["id"] for c in competences],
                },
                headers=manager.headers,
            ),
            "step 2: the manager creates the technician's profile",
            201,
        )
        assert profile["user"]["id"] == tech.id and profile["disponibilite"] == "disponible", f"step 2: {profile}"
        assert sorted((c["nom"], c["niveau"]) for c in profile["competences"]) == sorted(
            (c["nom"], "intermediaire") for c in competences
        ), f"step 2: competences of the profile {profile['competences']}"
        technicien_id = profile["id"]
        own = ok(http.get("/api/v1/techniciens/me", headers=tech.headers), "step 2: the technician reads its profile")
        assert own["id"] == technicien_id

        due = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0)
        plan = ok(
            http.post(
                "/api/v1/planning/",
                json={
                    "equipement_id": eid,
                    "frequence": "monthly",  # the frontend's English spelling; answered canonical
                    "prochaine_date": due.isoformat(),
                    "technicien_id": technicien_id,
                    "commentaire": "Vidange, filtres, contrôle des courroies",
                },
                headers=manager.headers,
            ),
            "step 2: the manager creates the preventive plan",
            201,
        )
        assert plan["frequence"] == "mensuel" and plan["statut"] == "actif", f"step 2: {plan}"
        plan_id = plan["id"]

        # 3. The plan falls due (the scheduler runs every second here): one preventive intervention.
        def generated() -> list[Json]:
            rows: list[Json] = ok(
                http.get("/api/v1/interventions", params={"planning_id": plan_id}, headers=manager.headers),
                "step 3: list the plan's interventions",
            )
            return rows

        def generated_with_its_organisation() -> list[Json]:
            # client_id comes from interventions' equipment replica; were assets' event later than the
            # occurrence, it is filled in when that event arrives (docs/interventions.md).
            rows = generated()
            return rows if rows and all(i["client_id"] is not None for i in rows) else []

        [preventive] = wait_for(generated_with_its_organisation, what="step 3: the plan's preventive intervention")
        generated_at = time.monotonic()
        pid = preventive["id"]
        assert preventive["type"] == "preventive" and preventive["priorite"] == "normale", f"step 3: {preventive}"
        assert preventive["titre"] == f"Maintenance préventive - {equipement['nom']}", f"step 3: {preventive}"
        assert preventive["equipement"] == {"id": eid, "nom": equipement["nom"]}, f"step 3: {preventive}"
        assert preventive["client_id"] == organisation["id"], f"step 3: {preventive}"
        # The plan names a technician: the intervention comes assigned to them (DOMAIN §5). If not, the
        # creation's history row says why (e.g. the technician's profile had not reached interventions yet).
        if preventive["statut"] != "affectee" or preventive["technicien_id"] != technicien_id:
            why = historique(http, manager.headers, pid)[0]["remarque"]
            pytest.fail(f"step 3: the preventive intervention is not assigned to the plan's technician: {why}")

        def plan_moved() -> Json | None:
            current: Json = ok(
                http.get(f"/api/v1/planning/{plan_id}", headers=manager.headers), "step 3: read the plan"
            )
            return current if current["derniere_date"] else None

        moved = wait_for(plan_moved, what="step 3: the plan's dates to move on")
        assert datetime.fromisoformat(moved["derniere_date"]) == due, f"step 3: {moved}"
        assert datetime.fromisoformat(moved["prochaine_date"]) == due + timedelta(days=30), f"step 3: {moved}"
        # Checked again at the end, after many more scheduler ticks: still exactly one.

        # 4. The client's user reports a breakdown on its own equipment.
        titre = "Compresseur : chute de pression et bruit anormal"
        corrective = ok(
            http.post(
                "/api/v1/interventions/",
                json={
                    "titre": titre,
                    "description": "La pression tombe à 4 bar en charge ; claquement au démarrage.",
                    "type": "corrective",
                    "priorite": "haute",
                    "equipement_id": eid,
                },
                headers=client.headers,
            ),
            "step 4: the client requests a corrective intervention",
            201,
        )
        iid = corrective["id"]
        assert corrective["statut"] == "ouverte" and corrective["created_by"] == client.id, f"step 4: {corrective}"
        assert corrective["client_id"] == organisation["id"], f"step 4: {corrective}"
        # No deadline given: the priority's SLA sets it (DOMAIN §4: haute 24 h).
        sla = datetime.fromisoformat(corrective["date_limite"]) - datetime.fromisoformat(corrective["date_creation"])
        assert abs(sla - timedelta(hours=24)) < timedelta(seconds=1), f"step 4: SLA deadline {sla}"
        mine = ok(http.get("/api/v1/interventions", headers=client.headers), "step 4: the client lists its requests")
        assert {i["id"] for i in mine} == {pid, iid}, f"step 4: the client sees {[i['id'] for i in mine]}"

        # 5. The manager dispatches it to the technician.
        assigned = ok(
            http.post(
                f"/api/v1/interventions/{iid}/affecter", json={"technicien_id": technicien_id}, headers=manager.headers
            ),
            "step 5: the manager assigns the technician",
        )
        assert assigned["statut"] == "affectee" and assigned["date_affectation"], f"step 5: {assigned}"
        assert assigned["technicien"] == {"id": technicien_id, "full_name": tech.full_name}, f"step 5: {assigned}"

        # 6. The technician is told in-app and by e-mail, sees it in its list, and starts the work.
        [told] = wait_for(
            lambda: notifications_about(http, tech, iid), what="step 6: the technician's in-app notification"
        )
        assert told["type"] == "affectation" and told["titre"] == f"Nouvelle intervention affectée : {titre}"
        mail = suite.smtp.wait_for(
            lambda m: to_address(m) == tech.email and m["Subject"] == f"[MIF] Affectation : {told['titre']}",
            timeout=15,
        )
        assert f"L'intervention n°{iid} « {titre} » vous a été affectée" in parts(mail)[0], "step 6: e-mail text"
        # The preventive one came assigned from the plan: that is an assignment too (DOMAIN §4).
        [told_preventive] = wait_for(
            lambda: notifications_about(http, tech, pid), what="step 6: the technician's preventive notification"
        )
        assert told_preventive["type"] == "affectation", f"step 6: {told_preventive}"
        work = ok(http.get("/api/v1/interventions", headers=tech.headers), "step 6: the technician's list")
        assert {i["id"] for i in work} == {pid, iid}, f"step 6: the technician sees {[i['id'] for i in work]}"

        started = ok(
            http.post(f"/api/v1/interventions/{iid}/demarrer", headers=tech.headers), "step 6: the technician starts"
        )
        assert started["statut"] == "en_cours" and started["date_debut_travaux"], f"step 6: {started}"
        wait_for(
            lambda: equipment_statut(http, client.headers, eid) == "maintenance",
            what="step 6: the equipment to be in maintenance (assets, by event)",
        )
        wait_for(
            lambda: ok(http.get("/api/v1/techniciens/me", headers=tech.headers), "step 6")["disponibilite"] == "occupe",
            what="step 6: the technician to be occupe while at work (planning, by event)",
        )
        # The client's dashboard while the work goes on: the preventive waits, the corrective is under way.
        during = wait_for_dashboard(
            http,
            client.headers,
            {
                "interventions": {
                    "ouverte": 1,
                    "en_cours": 1,
                    "en_attente": 0,
                    "terminees": 0,
                    "total_mensuel": 2,
                    "terminees_mensuel": 0,
                },
                "equipements": {"total": 1, "operationnel": 0, "maintenance": 1},
            },
            step="step 6",
        )
        assert during["taux_resolution"] == 0.0, f"step 6: {during}"

        # 7. The technician adds a photo (multipart part `file`, query intervention_id), then closes with a
        # report, the time spent and the cost.
        photo = png_photo()
        uploaded = ok(
            http.post(
                "/api/v1/documents/",
                params={"intervention_id": iid},
                files={"file": ("clapet-remplace.png", photo, "image/png")},
                data={"categorie": "photo", "description": "Clapet anti-retour remplacé"},
                headers=tech.headers,
            ),
            "step 7: the technician uploads a photo",
            201,
        )
        assert (uploaded["mime"], uploaded["taille"], uploaded["categorie"]) == ("image/png", len(photo), "photo")
        assert uploaded["sha256"] == hashlib.sha256(photo).hexdigest() and uploaded["uploaded_by"] == tech.id
        # The photo is in the intervention's history before closing (so the history's order is the story's).
        wait_for(
            lambda: any(h["action"] == "document" for h in historique(http, tech.headers, iid)),
            what="step 7: the document row in the intervention's history (documents → interventions event)",
        )
        rapport = "Clapet anti-retour grippé remplacé, fuite au raccord reprise. Pression stable à 7,5 bar."
        closed = ok(
            http.post(
                f"/api/v1/interventions/{iid}/cloturer",
                json={"rapport": rapport, "duree_reelle": 95, "cout_reel": 185_000},
                headers=tech.headers,
            ),
            "step 7: the technician closes the intervention",
        )
        assert closed["statut"] == "cloturee" and closed["date_cloture"] and closed["date_fin_travaux"], (
            f"step 7: {closed}"
        )
        assert (closed["rapport"], closed["duree_reelle"], closed["cout_reel"]) == (rapport, 95, 185_000)

        # 8. The client is told (in-app: the start, the photo, the closure; and by e-mail), and downloads the
        # photo through the signed link, without any Authorization header.
        def client_told() -> list[Json] | None:
            rows = notifications_about(http, client, iid)
            return rows if len(rows) >= 3 else None

        told_client = wait_for(client_told, what="step 8: the client's three notifications", timeout=15)
        assert Counter(n["titre"] for n in told_client) == Counter(
            [
                f"Intervention démarrée : {titre}",
                "Nouveau document : clapet-remplace.png",
                f"Intervention clôturée : {titre}",
            ]
        ), f"step 8: the client's notifications {[n['titre'] for n in told_client]}"
        assert {n["type"] for n in told_client} == {"information", "cloture"}
        closure_mail = suite.smtp.wait_for(
            lambda m: (
                to_address(m) == client.email and m["Subject"] == f"[MIF] Clôture : Intervention clôturée : {titre}"
            ),
            timeout=15,
        )
        assert f"L'intervention n°{iid} « {titre} » est terminée et clôturée." in parts(closure_mail)[0]
        documents = ok(http.get(f"/api/v1/documents/{iid}", headers=client.headers), "step 8: the client's documents")
        assert [d["id"] for d in documents] == [uploaded["id"]], f"step 8: {documents}"
        download = httpx.get(f"{suite.url}{documents[0]['path']}")  # no Authorization header
        assert download.status_code == 200, f"step 8: the download: {download.status_code} {download.text}"
        assert download.content == photo and download.headers["content-type"] == "image/png", "step 8: the bytes"
        # The technician does not hear of its own actions (DOMAIN §7): only its assignment.
        assert [n["type"] for n in notifications_about(http, tech, iid)] == ["affectation"], "step 8"

        # While on site the technician also does the preventive visit; once no intervention is open on the
        # compressor any more, it is operationnel again (DOMAIN §4: "closing the last open one").
        do_work(http, tech, pid, {"rapport": "Vidange et filtres faits."}, step="step 8b: the preventive visit")
        wait_for(
            lambda: equipment_statut(http, client.headers, eid) == "operationnel",
            what="step 8b: the equipment to be operationnel again after the last closure",
        )
        changes = ok(
            http.get(f"/api/v1/equipements/{eid}/historique-statut", headers=manager.headers),
            "step 8b: the equipment's statut history",
        )
        # Closing the corrective while the preventive was open did not make it operationnel in between.
        assert [(c["nouveau_statut"], c["source"], c["user_id"]) for c in changes] == [
            ("operationnel", "api", manager.id),  # registered
            ("maintenance", "event", tech.id),  # the corrective started
            ("operationnel", "event", tech.id),  # the preventive closed, the last open one
        ], f"step 8b: the equipment's statut changes {changes}"
        assert f"n°{iid} " in changes[1]["motif"] and f"n°{pid} " in changes[2]["motif"], f"step 8b: {changes}"
        wait_for(
            lambda: (
                ok(http.get("/api/v1/techniciens/me", headers=tech.headers), "step 8b")["disponibilite"] == "disponible"
            ),
            what="step 8b: the technician to be disponible again",
        )

        # 9. The manager archives the request.
        archived = ok(
            http.post(f"/api/v1/interventions/{iid}/archiver", headers=manager.headers), "step 9: the manager archives"
        )
        assert archived["statut"] == "archivee" and archived["date_archivage"], f"step 9: {archived}"

        # 10. The history tells every step, in order, with who did it.
        rows = historique(http, manager.headers, iid)
        story = [(h["action"], h["statut"], names.get(h["user_id"], h["user_id"])) for h in rows]
        assert story == [
            ("creation", "ouverte", client.full_name),
            ("affectation", "affectee", manager.full_name),
            ("changement_statut", "en_cours", tech.full_name),
            ("document", "en_cours", tech.full_name),
            ("changement_statut", "cloturee", tech.full_name),
            ("changement_statut", "archivee", manager.full_name),
        ], f"step 10: the history {story}"
        assert [h["horodatage"] for h in rows] == sorted(h["horodatage"] for h in rows), "step 10: oldest first"
        assert rows[1]["apres"]["technicien_id"] == technicien_id, f"step 10: {rows[1]}"
        assert rows[3]["apres"]["document_id"] == uploaded["id"], f"step 10: {rows[3]}"
        moves = [(h["ancien_statut"], h["statut"]) for h in rows if h["action"] == "changement_statut"]
        assert moves == [("affectee", "en_cours"), ("en_cours", "cloturee"), ("cloturee", "archivee")], (
            f"step 10: the statut moves {moves}"
        )
        assert all(h["ip"] is None for h in historique(http, client.headers, iid)), "step 10: ip is for managers"
        preventive_story = [(h["action"], h["statut"], h["user_id"]) for h in historique(http, manager.headers, pid)]
        assert preventive_story == [
            ("creation", "affectee", None),  # made by the scheduler, nobody's action
            ("changement_statut", "en_cours", tech.id),
            ("changement_statut", "cloturee", tech.id),
        ], f"step 10: the preventive's history {preventive_story}"

        # 11. The client's dashboard (its organisation only) counts what the story made; and the plan made
        # exactly one intervention, however many scheduler ticks went by.
        # The scheduler ticks every second in this suite; the story is usually quicker than three ticks.
        time.sleep(max(0.0, SCHEDULER_TICKS_TO_WAIT - (time.monotonic() - generated_at)))
        assert [i["id"] for i in generated()] == [pid], "step 11: the plan yielded more than one intervention"
        month = datetime.now(UTC).strftime("%Y-%m")
        stats = wait_for_dashboard(
            http,
            client.headers,
            {
                "interventions": {
                    "ouverte": 0,
                    "en_cours": 0,
                    "en_attente": 0,
                    "terminees": 2,
                    "total_mensuel": 2,
                    "terminees_mensuel": 2,
                },
                "taux_resolution": 100.0,
                "priorites": {"urgente": 0, "haute": 1, "normale": 1, "basse": 0},
                "equipements": {"total": 1, "operationnel": 1, "maintenance": 0},
                "utilisateurs": {"total": 1, "actifs": 1},
            },
            step="step 11",
        )
        assert stats["evolution_mensuelle"][-1] == {"month": month, "total": 2}, f"step 11: {stats}"
    assert time.monotonic() - began < 45, "the scenario took longer than its 45 s budget"

"""The bad-input catalogue (issue 13), one table through the gateway of the shared end-to-end suite.

Each row is a request a careless or hostile client sends: NUL bytes, JSON nested ten thousand deep, lone
UTF-16 surrogates, datetimes at the edge of the calendar, a filter repeated hundreds of times, bodies over
the limit, wrong types, path traversal, executables renamed as documents. Every row must be answered with
a 4xx `application/problem+json` (never a 5xx, never a dropped connection), and must store nothing: the
row's probe (a read-only count on the test database, keyed by a marker unique to this run) is the same
after the request as before.

Two rows may be accepted, each with what must then hold:
- an upload named `../../etc/passwd` with real PDF bytes: docs/documents.md says names are for display
  only, never used on disk, and kept as their last path component; so it is a 201 stored as `passwd`,
  and nothing appears outside the storage directory;
- a list with a 7 kB query parameter it does not know: ignored (200, a list) or refused (4xx), but never
  the gateway's 502 (its links used to repeat the query string into a header no proxy reads).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from mif_auth.testing import PASSWORD
from mif_documents.testing import elf_bytes, multipart, pdf_bytes, pe_bytes
from tests.support import Suite, post_until_created

pytestmark = pytest.mark.e2e

Headers = dict[str, str]

DEEP = 10_001  # JSON nesting depth of the deep bodies
REPEATS = 300  # how often the repeated filter is repeated (7.5 kB of query string)
OVERSIZE = 2 * 1024 * 1024  # over the gateway's 1 MB for buffered (JSON, form) bodies


@dataclass
class Context:
    suite: Suite
    http: httpx.Client  # the gateway, signed in as the bootstrap admin
    marker: str  # in every value a row would store: its probe counts rows carrying it
    equipement_id: int
    intervention_id: int

    def count(self, query: str, *args: Any) -> int:
        async def run() -> int:
            connection = await asyncpg.connect(self.suite.database.dsn, timeout=10)
            try:
                return int(await connection.fetchval(query, *args))
            finally:
                await connection.close()

        return asyncio.run(run())


Send = Callable[[Context], httpx.Response]
Probe = Callable[[Context], int]


@dataclass(frozen=True)
class Row:
    name: str
    send: Send
    expect: frozenset[int]  # the 4xx answers the contract allows for it
    probe: Probe | None  # what must not change; None for a read
    # For a row the contract may also accept (a 2xx in `expect`): what must hold of that answer.
    accepted: Callable[[Context, httpx.Response], None] | None = field(default=None)


def raw_json(ctx: Context, method: str, path: str, text: str, *, auth: bool = True) -> httpx.Response:
    """A JSON body sent exactly as written (lone surrogate escapes, depth no encoder would produce)."""
    headers = {"content-type": "application/json"}
    if not auth:
        return httpx.request(method, f"{ctx.suite.url}{path}", content=text.encode(), headers=headers, timeout=30)
    return ctx.http.request(method, path, content=text.encode(), headers=headers)


def upload(ctx: Context, filename: str, content: bytes) -> httpx.Response:
    body, headers = multipart(content, filename=filename)
    return ctx.http.post(
        "/api/v1/documents", params={"intervention_id": ctx.intervention_id}, content=body, headers=headers
    )


def login_form(ctx: Context, username: str, password: str) -> httpx.Response:
    data = {"username": username, "password": password}
    return httpx.post(f"{ctx.suite.url}/api/v1/auth/login", data=data, timeout=30)


def refresh_tokens(ctx: Context) -> int:
    return ctx.count("SELECT count(*) FROM auth.refresh_token")


def users(ctx: Context) -> int:
    return ctx.count('SELECT count(*) FROM auth."user" WHERE username LIKE $1 OR email LIKE $1', f"%{ctx.marker}%")


def clients(ctx: Context) -> int:
    return ctx.count("SELECT count(*) FROM assets.client WHERE nom_entreprise LIKE $1", f"%{ctx.marker}%")


def equipements(ctx: Context) -> int:
    return ctx.count("SELECT count(*) FROM assets.equipement WHERE localisation LIKE $1", f"%{ctx.marker}%")


def interventions(ctx: Context) -> int:
    return ctx.count(
        "SELECT count(*) FROM interventions.intervention WHERE titre LIKE $1 OR equipement_id = $2",
        f"%{ctx.marker}%",
        ctx.equipement_id,
    )


def notifications(ctx: Context) -> int:
    return ctx.count(
        "SELECT count(*) FROM notifications.notification WHERE titre LIKE $1 OR contenu LIKE $1", f"%{ctx.marker}%"
    )


def documents(ctx: Context) -> int:
    return ctx.count("SELECT count(*) FROM documents.document WHERE intervention_id = $1", ctx.intervention_id)


def new_user(ctx: Context, **fields: Any) -> dict[str, Any]:
    name = f"{ctx.marker}{uuid.uuid4().hex[:4]}"
    return {
        "username": name,
        "full_name": f"Bad input {name}",
        "email": f"{name}@e2e.mif.ma",
        "role": "technicien",
        "password": PASSWORD,
        **fields,
    }


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _traversal_stored_for_display_only(ctx: Context, response: httpx.Response) -> None:
    document = response.json()
    assert document["filename"] == "passwd", document
    storage = Path(ctx.suite.env["MIF_DOCUMENTS_STORAGE_DIR"])
    for escaped in (storage.parent.parent / "etc" / "passwd", storage.parent / "etc" / "passwd"):
        assert not escaped.exists(), f"{escaped} was written"
    assert not list(storage.rglob("passwd")), "the client's name was used on disk"


def _a_list(ctx: Context, response: httpx.Response) -> None:
    assert isinstance(response.json(), list), response.text[:200]


NUL = "\x00"
FIXED_DEADLINE = "9999-12-31T23:59:59-23:59"  # 10000-01-01T23:58:59Z once in UTC: past datetime.max

ROWS: tuple[Row, ...] = (
    # --- NUL bytes ----------------------------------------------------------------------------------------
    *(
        Row(
            f"NUL in q of GET {path}",
            lambda ctx, path=path: ctx.http.get(path, params={"q": f"{ctx.marker}{NUL}"}),
            frozenset({400, 422}),
            None,
        )
        for path in (
            "/api/v1/users",
            "/api/v1/clients",
            "/api/v1/equipements",
            "/api/v1/techniciens",
            "/api/v1/documents",
        )
    ),
    Row(
        "NUL in the sign-in username (form)",
        lambda ctx: login_form(ctx, f"admin{NUL}", PASSWORD),
        frozenset({400, 401, 422}),
        refresh_tokens,
    ),
    Row(
        "NUL in the sign-in password (form)",
        lambda ctx: login_form(ctx, "admin", f"{PASSWORD}{NUL}"),
        frozenset({400, 401, 422}),
        refresh_tokens,
    ),
    Row(
        "NUL in the sign-in username (JSON)",
        lambda ctx: raw_json(
            ctx, "POST", "/api/v1/auth/login", json.dumps({"username": f"adm{NUL}in", "password": PASSWORD}), auth=False
        ),
        frozenset({400, 401, 422}),
        refresh_tokens,
    ),
    Row(
        "NUL in a JSON field (user full_name)",
        lambda ctx: ctx.http.post("/api/v1/users", json=new_user(ctx, full_name=f"Nul{NUL}Byte")),
        frozenset({400, 422}),
        users,
    ),
    Row(
        "NUL in a JSON field (client nom_entreprise)",
        lambda ctx: ctx.http.post("/api/v1/clients", json={"nom_entreprise": f"{ctx.marker}{NUL}SA"}),
        frozenset({400, 422}),
        clients,
    ),
    Row(
        "NUL in a JSON field (intervention titre)",
        lambda ctx: ctx.http.post(
            "/api/v1/interventions",
            json={"titre": f"{ctx.marker}{NUL}", "type": "corrective", "equipement_id": ctx.equipement_id},
        ),
        frozenset({400, 422}),
        interventions,
    ),
    # --- JSON nested 10,000+ deep ---------------------------------------------------------------------------
    Row(
        "JSON nested 10,001 deep on POST /auth/login",
        lambda ctx: raw_json(ctx, "POST", "/api/v1/auth/login", nested(DEEP), auth=False),
        frozenset({400, 413, 422}),
        refresh_tokens,
    ),
    Row(
        "JSON nested 10,001 deep on POST /auth/refresh",
        lambda ctx: raw_json(
            ctx, "POST", "/api/v1/auth/refresh", '{"refresh_token": ' + nested(DEEP) + "}", auth=False
        ),
        frozenset({400, 413, 422}),
        refresh_tokens,
    ),
    # --- lone UTF-16 surrogates -----------------------------------------------------------------------------
    Row(
        "lone surrogate in the password of a new user",
        # json.dumps writes the lone surrogate as the escape \ud800, as a JavaScript client would send it.
        lambda ctx: raw_json(ctx, "POST", "/api/v1/users", json.dumps(new_user(ctx, password="Surrogat\ud800e-2024!"))),
        frozenset({400, 422}),
        users,
    ),
    Row(
        "lone surrogates in a notification's texts",
        lambda ctx: raw_json(
            ctx,
            "POST",
            "/api/v1/notifications",
            json.dumps({"role": "admin", "titre": f"{ctx.marker}\udc00", "contenu": f"{ctx.marker} \ud800 texte"}),
        ),
        frozenset({400, 422}),
        notifications,
    ),
    # --- datetimes at the edge of the calendar ---------------------------------------------------------------
    Row(
        f"date_limite {FIXED_DEADLINE} on POST /interventions",
        lambda ctx: ctx.http.post(
            "/api/v1/interventions",
            json={
                "titre": f"{ctx.marker} deadline",
                "type": "corrective",
                "equipement_id": ctx.equipement_id,
                "date_limite": FIXED_DEADLINE,
            },
        ),
        frozenset({422}),
        interventions,
    ),
    Row(
        "GET /planning/calendrier?from=9999-12-31T23:59:59Z",
        lambda ctx: ctx.http.get("/api/v1/planning/calendrier", params={"from": "9999-12-31T23:59:59Z"}),
        frozenset({422}),
        None,
    ),
    # --- a repeated filter ---------------------------------------------------------------------------------
    Row(
        f"disponibilite repeated {REPEATS} times on GET /techniciens",
        lambda ctx: ctx.http.get("/api/v1/techniciens", params=[("disponibilite", "disponible")] * REPEATS),
        frozenset({400, 414, 422}),
        None,
    ),
    Row(
        "7 kB unknown query parameter on GET /clients (its links: past what a proxy reads as one header)",
        lambda ctx: ctx.http.get("/api/v1/clients", params={"sans_objet": "x" * 7000}),
        frozenset({200, 400, 414, 422}),
        None,
        accepted=_a_list,
    ),
    # --- oversize bodies -----------------------------------------------------------------------------------
    Row(
        "2 MB JSON body on POST /clients",
        lambda ctx: ctx.http.post("/api/v1/clients", json={"nom_entreprise": ctx.marker + "x" * OVERSIZE}),
        frozenset({413}),
        clients,
    ),
    Row(
        "2 MB form body on POST /auth/login",
        lambda ctx: login_form(ctx, "admin", "x" * OVERSIZE),
        frozenset({413}),
        refresh_tokens,
    ),
    # --- wrong types ---------------------------------------------------------------------------------------
    Row(
        "wrong types on POST /interventions",
        lambda ctx: ctx.http.post(
            "/api/v1/interventions", json={"titre": ["x"], "type": 7, "equipement_id": "un", "urgence": "peut-être"}
        ),
        frozenset({422}),
        interventions,
    ),
    Row(
        "wrong types on POST /equipements",
        lambda ctx: ctx.http.post(
            "/api/v1/equipements",
            json={"nom": {"a": 1}, "type": None, "localisation": ctx.marker, "client_id": "deux"},
        ),
        frozenset({422}),
        equipements,
    ),
    Row(
        "wrong types on POST /users",
        lambda ctx: ctx.http.post("/api/v1/users", json=new_user(ctx, role=["admin"], password=12345678)),
        frozenset({422}),
        users,
    ),
    # --- path traversal ------------------------------------------------------------------------------------
    Row(
        "../../etc/passwd as a document id to download",
        lambda ctx: ctx.http.get("/api/v1/documents/..%2F..%2Fetc%2Fpasswd/download"),
        frozenset({400, 404, 422}),
        None,
    ),
    Row(
        "../../etc/passwd as a document id",
        lambda ctx: ctx.http.get("/api/v1/documents/fichier/..%2F..%2Fetc%2Fpasswd"),
        frozenset({400, 404, 422}),
        None,
    ),
    Row(
        "upload named ../../ (nothing usable left)",
        lambda ctx: upload(ctx, "../../", pdf_bytes(2048)),
        frozenset({422}),
        documents,
    ),
    Row(
        "ELF executable named ../../etc/passwd.pdf",
        lambda ctx: upload(ctx, "../../etc/passwd.pdf", elf_bytes()),
        frozenset({415, 422}),
        documents,
    ),
    # --- executables renamed as documents ------------------------------------------------------------------
    Row(
        "ELF executable named report.pdf",
        lambda ctx: upload(ctx, "report.pdf", elf_bytes()),
        frozenset({415, 422}),
        documents,
    ),
    Row(
        "PE executable named photo.png",
        lambda ctx: upload(ctx, "photo.png", pe_bytes()),
        frozenset({415, 422}),
        documents,
    ),
    # --- accepted by contract: the name is for display only ------------------------------------------------
    Row(
        "PDF named ../../etc/passwd (kept as `passwd`, for display only)",
        lambda ctx: upload(ctx, "../../etc/passwd", pdf_bytes(2048)),
        frozenset({201}),
        None,
        accepted=_traversal_stored_for_display_only,
    ),
)


def test_bad_input_is_a_4xx_problem_and_stores_nothing(suite: Suite, admin_headers: Headers) -> None:
    marker = f"badin{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=suite.url, headers=admin_headers, timeout=30) as http:
        org = http.post("/api/v1/clients", json={"nom_entreprise": f"Bad input {marker}"})
        assert org.status_code == 201, org.text
        equipement = http.post(
            "/api/v1/equipements",
            json={"nom": "Presse", "type": "presse", "localisation": "Atelier", "client_id": org.json()["id"]},
        )
        assert equipement.status_code == 201, equipement.text
        equipement_id = equipement.json()["id"]
        # Once interventions knows the equipment (event or read-through).
        target = {"titre": "Bad input target", "type": "corrective", "equipement_id": equipement_id}
        intervention_id = post_until_created(suite, admin_headers, "/api/v1/interventions", target)["id"]
        ctx = Context(suite, http, marker, equipement_id, intervention_id)
        # The target itself counts in `interventions`, `documents` counts uploads to it: probes take the before.
        failures: list[str] = []
        for row in ROWS:
            before = row.probe(ctx) if row.probe is not None else None
            try:
                response = row.send(ctx)
            except httpx.HTTPError as exc:
                failures.append(f"{row.name}: no answer ({exc!r})")
                continue
            status, content_type = response.status_code, response.headers.get("content-type", "")
            problems = []
            if status not in row.expect:
                problems.append(f"{status} (expected {sorted(row.expect)})")
            if status >= 400 and not content_type.startswith("application/problem+json"):
                problems.append(f"content-type {content_type!r}")
            if row.probe is not None and (after := row.probe(ctx)) != before:
                problems.append(f"stored something ({before} → {after})")
            if row.accepted is not None and status in row.expect and status < 400:
                try:
                    row.accepted(ctx, response)
                except AssertionError as exc:
                    problems.append(str(exc))
            if problems:
                failures.append(f"{row.name}: {', '.join(problems)}: {response.text[:160]}")
        # The gateway and the services are still there after all of it.
        assert http.get("/api/v1/users", params={"limit": 1}).status_code == 200
    assert not failures, f"{len(failures)} of {len(ROWS)} rows failed:\n" + "\n".join(failures)

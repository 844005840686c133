"""The request guard (mif_common.guard) in an app built by `create_service_app`: hostile input is a 400
problem+json before any route runs (nothing stored), anything else reaches the route unchanged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Form, Request, UploadFile
from starlette.types import Message, Receive, Scope, Send

from mif_common.app import ServiceParts, create_service_app
from mif_common.config import ServiceSettings
from mif_common.guard import RequestGuardMiddleware, json_refusal

STORED: list[Any] = []  # what the routes were given: a refused request stores nothing

probe = APIRouter(prefix="/api/v1/probe")


@probe.post("/json", status_code=201)
async def store_json(body: dict[str, Any] | list[Any]) -> dict[str, Any]:
    STORED.append(body)
    return {"stored": body}


@probe.post("/raw", status_code=201)
async def store_raw(request: Request) -> dict[str, Any]:
    body = await request.body()
    STORED.append(body)
    return {"size": len(body)}


@probe.post("/form", status_code=201)
async def store_form(name: str = Form()) -> dict[str, str]:
    STORED.append(name)
    return {"name": name}


@probe.post("/upload", status_code=201)
async def store_upload(file: UploadFile) -> dict[str, int]:
    content = await file.read()
    STORED.append(content)
    return {"size": len(content)}


@probe.get("/items")
async def search(q: str | None = None) -> list[str]:
    STORED.append(q)
    return [q or ""]


@probe.get("/items/{name}")
async def one(name: str) -> dict[str, str]:
    STORED.append(name)
    return {"name": name}


class ProbeSettings(ServiceSettings):
    service_name: ClassVar[str] = "probe"


def make_app(**settings: Any) -> FastAPI:
    values: dict[str, Any] = {"environment": "test", "background_tasks": False, "log_json": False}
    return create_service_app(
        ProbeSettings(**(values | settings)), ServiceParts(title="probe", description="probe", routers=[probe])
    )


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return make_app()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    STORED.clear()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


def deep(levels: int, opening: bytes = b"[", closing: bytes = b"]") -> bytes:
    return opening * levels + closing * levels


def deep_objects(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def cesu(text: str) -> bytes:
    """UTF-8 with surrogates encoded one by one (what a careless client writes for a lone surrogate)."""
    return text.encode("utf-8", "surrogatepass")


JSON = "application/json"
REFUSED_JSON = [
    # (case, body, content type, slug, field)
    ("NUL in a value", b'{"name": "a\\u0000b"}', JSON, "nul-character", "name"),
    ("NUL in a key", b'{"na\\u0000me": 1}', JSON, "nul-character", "na\\u0000me"),
    ("NUL deep inside", b'{"x": [{"y": "ok"}, {"y": "\\u0000"}]}', JSON, "nul-character", "x.1.y"),
    ("NUL in a top-level string", b'"\\u0000"', JSON, "nul-character", "body"),
    ("NUL beside a NaN", b'{"v": NaN, "n": "\\u0000"}', JSON, "nul-character", "n"),
    ("lone high surrogate", b'{"name": "\\ud800"}', JSON, "invalid-unicode", "name"),
    ("lone low surrogate", b'{"name": "x\\udc5a"}', JSON, "invalid-unicode", "name"),
    ("pair in the wrong order", b'{"name": "\\udc5a\\ud9ca"}', JSON, "invalid-unicode", "name"),
    ("surrogates as raw bytes", cesu('{"name": "\ud9ca\udc5a"}'), JSON, "invalid-unicode", "name"),
    ("surrogate in a key", b'{"\\ud800": 1}', JSON, "invalid-unicode", "\\ud800"),
    ("surrogate in a list", b'["ok", ["\\udfff"]]', JSON, "invalid-unicode", "1.0"),
    ("65 nested arrays", deep(65), JSON, "json-too-deep", None),
    ("65 nested objects", deep_objects(65), JSON, "json-too-deep", None),
    ("10 000 nested arrays", deep(10_000), JSON, "json-too-deep", None),
    ("100 000 nested objects", deep_objects(100_000), JSON, "json-too-deep", None),
    ("NUL in merge-patch+json", b'{"name": "\\u0000"}', "application/merge-patch+json", "nul-character", "name"),
    ("NUL without a content type", b'{"name": "\\u0000"}', None, "nul-character", "name"),
]


@pytest.mark.parametrize(
    ("body", "content_type", "slug", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in REFUSED_JSON],
)
@pytest.mark.parametrize("path", ["/api/v1/probe/json", "/api/v1/probe/raw"])
async def test_hostile_json_is_400_and_stores_nothing(
    client: httpx.AsyncClient, path: str, body: bytes, content_type: str | None, slug: str, field: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post(path, content=body, headers=headers)
    problem = assert_problem(response, 400, slug, path)
    if field is not None:
        assert problem["errors"][0]["field"] == field
    assert STORED == []


REFUSED_URLS = [
    ("/api/v1/probe/items?q=%00", "query string"),
    ("/api/v1/probe/items?q=a%00b&x=1", "query string"),
    ("/api/v1/probe/items?%00=1", "query string"),
    ("/api/v1/probe/items/a%00b", "path"),
    ("/api/v1/probe/json?q=%00", "query string"),  # before the body is read
]


@pytest.mark.parametrize(("url", "where"), REFUSED_URLS)
async def test_nul_in_the_url_is_400(client: httpx.AsyncClient, url: str, where: str) -> None:
    response = await client.post(url, json={"ok": 1}) if "json" in url else await client.get(url)
    problem = assert_problem(response, 400, "nul-character", url.split("?")[0].replace("%00", "\x00"))
    assert f"The {where} contains a NUL character" in problem["detail"]
    assert STORED == []


async def test_raw_nul_bytes_in_the_query_string_are_400(app: FastAPI) -> None:
    """No HTTP client sends them; a hand-written request can (uvicorn passes them through)."""
    status, headers, body = await call(app, "GET", "/api/v1/probe/items", query=b"q=a\x00b")
    assert status == 400 and headers[b"content-type"] == b"application/problem+json"
    assert json.loads(body)["type"].endswith("/nul-character")


@pytest.mark.parametrize("body", ["name=a%00b", "name=ok&other=%00", "na%00me=x", "name=a\x00b"])
async def test_nul_in_a_urlencoded_form_is_400(client: httpx.AsyncClient, body: str) -> None:
    response = await client.post(
        "/api/v1/probe/form", content=body.encode(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert_problem(response, 400, "nul-character", "/api/v1/probe/form")
    assert STORED == []


ACCEPTED_JSON = [
    ("64 nested arrays", deep(64), [[]]),
    ("64 nested objects", deep_objects(64), None),
    ("a valid surrogate pair", b'{"name": "\\ud9ca\\udc5a"}', {"name": "\U0008285a"}),
    ("an escaped backslash before u0000", b'{"name": "\\\\u0000"}', {"name": "\\u0000"}),
    ("brackets inside strings", b'{"s": "' + b"[{" * 100 + b'"}', {"s": "[{" * 100}),
    ("a list of 200 objects", json.dumps([{"a": [1, 2]} for _ in range(200)]).encode(), None),
    ("big integers", b'{"n": 123456789012345678901234567890}', {"n": 123456789012345678901234567890}),
    ("non-ASCII text", '{"nom": "Compétence à 100 % — 日本"}'.encode(), {"nom": "Compétence à 100 % — 日本"}),
]


@pytest.mark.parametrize(("body", "expected"), [pytest.param(*c[1:], id=c[0]) for c in ACCEPTED_JSON])
async def test_other_json_reaches_the_route_unchanged(client: httpx.AsyncClient, body: bytes, expected: Any) -> None:
    response = await client.post("/api/v1/probe/raw", content=body, headers={"content-type": JSON})
    assert response.status_code == 201, response.text
    assert [body] == STORED  # replayed byte for byte
    if expected is not None and not isinstance(expected, list):
        response = await client.post("/api/v1/probe/json", content=body, headers={"content-type": JSON})
        assert response.status_code == 201, response.text
        assert response.json()["stored"] == expected


async def test_json_that_is_not_json_is_answered_by_the_app(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/probe/json", content=b'{"a": ', headers={"content-type": JSON})
    assert response.status_code == 422 and response.json()["errors"][0]["message"] == "the body is not valid JSON"


async def test_a_body_in_chunks_is_inspected_whole_and_replayed(app: FastAPI) -> None:
    chunks = [b'{"name": "a', b"\\u00", b'00"}']  # the escape split across chunks
    status, _, body = await call(app, "POST", "/api/v1/probe/raw", chunks=chunks, content_type=b"application/json")
    assert status == 400 and json.loads(body)["type"].endswith("/nul-character")
    status, _, body = await call(
        app, "POST", "/api/v1/probe/raw", chunks=[b'{"a":', b" 1}"], content_type=JSON.encode()
    )
    assert status == 201 and json.loads(body) == {"size": 8}


async def test_uploads_stream_through_unread_and_nul_bytes_in_files_are_fine(client: httpx.AsyncClient) -> None:
    content = b"\x00\x01binary\x00" * 1000
    response = await client.post("/api/v1/probe/upload", files={"file": ("a.bin", content, "application/octet-stream")})
    assert response.status_code == 201 and response.json() == {"size": len(content)}


async def test_the_guard_never_buffers_other_bodies() -> None:
    """An upload's first chunk reaches the app while the rest is still to come."""
    more = asyncio.Event()
    seen: list[bytes] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((await receive())["body"])
        more.set()
        seen.append((await receive())["body"])

    messages = [
        {"type": "http.request", "body": b"first", "more_body": True},
        {"type": "http.request", "body": b"last", "more_body": False},
    ]

    async def receive() -> Message:
        if len(messages) == 1:
            await asyncio.wait_for(more.wait(), 2)  # the second chunk only after the app took the first
        return messages.pop(0)

    guard = RequestGuardMiddleware(inner, max_body_bytes=1024)
    scope = http_scope("POST", "/upload", headers=[(b"content-type", b"multipart/form-data; boundary=x")])
    scope["headers"].append((b"transfer-encoding", b"chunked"))
    await guard(scope, receive, no_send)
    assert seen == [b"first", b"last"]


async def test_a_body_over_the_limit_is_left_to_the_size_limit(app: FastAPI) -> None:
    big = b'{"s": "' + b"x" * 1_100_000 + b'\\u0000"}'
    status, _, _ = await call(app, "POST", "/api/v1/probe/raw", chunks=[big], content_type=JSON.encode())
    assert status == 413


def test_a_small_plain_json_body_passes() -> None:
    """The common case: a small JSON body with nothing to refuse (its cost is in bench/, not timed here)."""
    body = json.dumps(
        {"titre": "Fuite d'huile compresseur", "type": "corrective", "priorite": "haute", "equipement_id": 12}
    ).encode()
    assert json_refusal(body) is None


# --- helpers -----------------------------------------------------------------------------------------


def assert_problem(response: httpx.Response, status: int, slug: str, instance: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status and problem["type"].endswith("/" + slug)
    assert problem["title"] and problem["detail"].endswith(".")
    assert problem["instance"] == instance
    assert problem["request_id"] and problem["request_id"] == response.headers["x-request-id"]
    return problem


def http_scope(
    method: str, path: str, *, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"test"), *(headers or [])],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }


async def no_send(message: Message) -> None:
    return None


async def call(
    app: FastAPI,
    method: str,
    path: str,
    *,
    query: bytes = b"",
    chunks: list[bytes] | None = None,
    content_type: bytes | None = None,
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request straight through the ASGI app (bytes no HTTP client would send; bodies in chunks)."""
    headers: list[tuple[bytes, bytes]] = []
    if content_type:
        headers.append((b"content-type", content_type))
    if chunks:
        headers.append((b"content-length", str(sum(map(len, chunks))).encode()))
    parts = chunks or [b""]
    pending: list[Message] = [
        {"type": "http.request", "body": c, "more_body": i < len(parts) - 1} for i, c in enumerate(parts)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(http_scope(method, path, query=query, headers=headers), receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body

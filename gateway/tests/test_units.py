"""Pure units: the sliding-window limiter, settings, body classification, login account parsing."""

from __future__ import annotations

import pytest

from mif_gateway.config import GatewaySettings
from mif_gateway.proxy import is_buffered_type, login_account, valid_path
from mif_gateway.ratelimit import SlidingWindowLimiter, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_allows_limit_then_refuses_with_retry_after() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(3, 10.0, clock=clock)
    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]
    wait = limiter.hit("a")
    assert wait is not None and 0 < wait <= 20
    assert limiter.hit("b") is None  # keys are independent
    clock.now += wait + 0.001
    assert limiter.hit("a") is None


def test_limiter_previous_window_decays() -> None:
    clock = Clock()
    clock.now = 1000.0  # start of a window (1000 // 10 == 100)
    limiter = SlidingWindowLimiter(4, 10.0, clock=clock)
    for _ in range(4):
        assert limiter.hit("k") is None
    clock.now = 1012.5  # next window, 25 % in: previous weighs 0.75 * 4 = 3
    assert limiter.hit("k") is None  # 3 + 0 + 1 <= 4
    wait = limiter.hit("k")  # 3 + 1 + 1 > 4
    assert wait is not None
    clock.now += wait + 1e-6
    assert limiter.hit("k") is None


def test_limiter_bounds_its_memory() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(1, 10.0, max_keys=100, clock=clock)
    for i in range(1000):
        limiter.hit(f"k{i}")
    assert len(limiter) <= 100
    clock.now += 100
    limiter.hit("fresh")
    assert len(limiter) == 1


def test_retry_after_header_is_a_positive_integer() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(2.2) == "3"


@pytest.mark.parametrize(
    ("content_type", "buffered"),
    [
        ("application/json", True),
        ("application/merge-patch+json; charset=utf-8", True),
        ("application/x-www-form-urlencoded", True),
        ("text/csv", True),
        ("", True),
        ("multipart/form-data; boundary=x", False),
        ("application/octet-stream", False),
        ("image/png", False),
    ],
)
def test_body_classification(content_type: str, buffered: bool) -> None:
    assert is_buffered_type(content_type) is buffered


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("/api/v1/users/1", True),
        ("/api/v1/auth/.well-known/jwks.json", True),
        ("/api/v1/users/../admin", False),
        ("/api/v1/users/./1", False),
        ("/api/v1//users", False),
        ("/api/v1/users/..", False),
        ("/api/v1/users/\x00", False),
    ],
)
def test_valid_path(path: str, ok: bool) -> None:
    assert valid_path(path) is ok


async def test_login_account_from_each_body_kind() -> None:
    assert await login_account(b"username=Alice%40X.ma&password=p", "application/x-www-form-urlencoded") == (
        "acct:alice@x.ma"
    )
    assert await login_account(b"email=bob@x.ma&password=p", "application/x-www-form-urlencoded") == "acct:bob@x.ma"
    multipart = b'--b\r\nContent-Disposition: form-data; name="username"\r\n\r\n Carol \r\n--b--\r\n'
    assert await login_account(multipart, "multipart/form-data; boundary=b") == "acct:carol"
    assert await login_account(b'{"username": "Dan"}', "application/json") == "acct:dan"
    assert await login_account(b"{broken", "application/json") is None
    assert await login_account(b"password=p", "application/x-www-form-urlencoded") is None


def test_settings_upstreams_and_jwks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIF_GATEWAY_UPSTREAMS", '{"auth": "http://auth.internal:8000/", "assets": "http://a:1"}')
    settings = GatewaySettings()
    urls = settings.upstream_urls()
    assert urls["auth"] == "http://auth.internal:8000"
    assert urls["assets"] == "http://a:1"
    assert urls["planning"] == "http://127.0.0.1:8004"
    assert settings.jwks_url == "http://auth.internal:8000/api/v1/auth/.well-known/jwks.json"
    assert settings.max_buffered_body_bytes == 1_048_576
    monkeypatch.setenv("MIF_GATEWAY_UPSTREAMS", '{"billing": "http://b"}')
    with pytest.raises(ValueError, match="billing"):
        GatewaySettings()

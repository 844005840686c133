"""Signed links (`mif_common.signed_links`): the signer, the one-segment tokens reports' export links are
made of (tampering, expiry, garbage that must never raise), and the secret's rules."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import SecretStr

from mif_common.signed_links import (
    MAX_TOKEN_LENGTH,
    SECRET_FILE,
    LinkSecretError,
    LinkSigner,
    load_link_secret,
    make_token,
    read_token,
)

SECRET = b"k" * 48
CONTEXT = b"mif-reports/export-file/v1:"
NOW = 1_800_000_000.0
TTL = 3600


@pytest.fixture
def signer() -> LinkSigner:
    return LinkSigner(SECRET, context=CONTEXT)


# --- the signer -------------------------------------------------------------------------------------


def test_the_signature_is_the_hmac_of_context_and_message() -> None:
    # Pinned: documents' download URLs in clients' hands were signed exactly so, and must stay valid.
    documents = LinkSigner(SECRET, context=b"mif-documents/download/v1:")
    mac = hmac.new(SECRET, b"mif-documents/download/v1:5:1000", hashlib.sha256).digest()
    assert documents.signature("5:1000") == base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", documents.signature("5:1000"))


def test_contexts_and_secrets_keep_signatures_apart(signer: LinkSigner) -> None:
    other_use = LinkSigner(SECRET, context=b"mif-documents/download/v1:")
    other_secret = LinkSigner(b"j" * 48, context=CONTEXT)
    sig = signer.signature("5.1000")
    assert signer.valid("5.1000", sig)
    assert not other_use.valid("5.1000", sig)
    assert not other_secret.valid("5.1000", sig)
    assert not signer.valid("5.1001", sig)


@pytest.mark.parametrize("sig", [None, "", "x", "é" * 43, "A" * 101, " " + "A" * 42])
def test_garbage_signatures_are_invalid(signer: LinkSigner, sig: str | None) -> None:
    assert not signer.valid("5.1000", sig)


def test_a_short_secret_or_no_context_is_refused() -> None:
    with pytest.raises(LinkSecretError, match="too short"):
        LinkSigner(b"k" * 15, context=CONTEXT)
    with pytest.raises(ValueError, match="context"):
        LinkSigner(SECRET, context=b"")


# --- tokens -----------------------------------------------------------------------------------------


def test_a_token_is_one_path_segment_that_reads_back_to_its_id(signer: LinkSigner) -> None:
    token = make_token(signer, 42, TTL, now=NOW)
    assert re.fullmatch(r"42\.1800003600\.[A-Za-z0-9_-]{43}", token)
    assert read_token(signer, token, now=NOW) == 42
    assert read_token(signer, make_token(signer, 0, TTL, now=NOW), now=NOW) == 0
    big = 2**63 - 1
    assert read_token(signer, make_token(signer, big, TTL, now=NOW), now=NOW) == big


def test_a_token_expires(signer: LinkSigner) -> None:
    token = make_token(signer, 42, TTL, now=NOW)
    assert read_token(signer, token, now=NOW + TTL - 1) == 42
    assert read_token(signer, token, now=NOW + TTL) is None  # expiry is exclusive
    assert read_token(signer, token, now=NOW + 10 * TTL) is None
    assert read_token(signer, make_token(signer, 42, TTL)) == 42  # against the clock


def test_a_tampered_token_is_refused(signer: LinkSigner) -> None:
    token = make_token(signer, 42, TTL, now=NOW)
    entity_id, expires, sig = token.split(".")
    flipped = ("B" if sig[0] == "A" else "A") + sig[1:]
    tampered = [
        f"43.{expires}.{sig}",  # another file
        f"{entity_id}.{int(expires) + 86400}.{sig}",  # a longer life
        f"{entity_id}.{expires}.{flipped}",
        f"0{entity_id}.{expires}.{sig}",  # the same number spelt otherwise
        f"{entity_id}.{expires}.{sig}=",
        f"{entity_id}.{expires}.{sig[:-1]}",
        make_token(LinkSigner(SECRET, context=b"mif-documents/download/v1:"), 42, TTL, now=NOW),
        make_token(LinkSigner(b"j" * 48, context=CONTEXT), 42, TTL, now=NOW),
    ]
    for forged in tampered:
        assert read_token(signer, forged, now=NOW) is None, forged


GARBAGE = [
    "",
    ".",
    "..",
    "1.2",
    "1.2.3.4",
    "a.1800003600.sig",
    "1.b.sig",
    "-1.1800003600.sig",
    "1.-1800003600.sig",
    "+1.1800003600.sig",
    " 1.1800003600.sig",
    "1.1800003600.",
    ".1800003600.sig",
    "1.1800003600.sig\n",
    "١.1800003600.sig",  # an Arabic-Indic one: a digit to str.isdigit(), not to us
    "².1800003600.sig",
    "1.1800003600.é",
    "1.1800003600.sig\x00",
    "9" * 19 + ".1800003600.sig",
    "9" * 150 + ".1.sig",
    "1." + "9" * 150 + ".sig",
    "1.1800003600." + "A" * 150,
    "1.1800003600." + "A" * (MAX_TOKEN_LENGTH + 1),
    "A" * (MAX_TOKEN_LENGTH + 1),
    "../../etc/passwd",
    "1.1e9.sig",
    "1.0x10.sig",
    "1_000.1800003600.sig",
]


@pytest.mark.parametrize("token", GARBAGE)
def test_garbage_is_none_and_never_raises(signer: LinkSigner, token: str) -> None:
    assert read_token(signer, token, now=NOW) is None


def test_a_signed_id_beyond_a_bigint_is_refused(signer: LinkSigner) -> None:
    # Only the holder of the secret could make one; still, the id must fit the table's column.
    message = f"{2**63}.1800003600"
    assert read_token(signer, f"{message}.{signer.signature(message)}", now=NOW) is None


@pytest.mark.parametrize(("entity_id", "ttl"), [(-1, TTL), (2**63, TTL), (1, 0), (1, -5)])
def test_making_a_token_of_nonsense_is_a_programming_error(signer: LinkSigner, entity_id: int, ttl: int) -> None:
    with pytest.raises(ValueError):
        make_token(signer, entity_id, ttl, now=NOW)


# --- the secret -------------------------------------------------------------------------------------


VARIABLE = "MIF_REPORTS_LINK_SECRET"


def test_a_configured_secret_is_used_and_no_file_written(tmp_path: Path) -> None:
    value = "s" * 48
    for production in (False, True):
        secret = load_link_secret(SecretStr(value), production=production, variable=VARIABLE, directory=tmp_path)
        assert secret == value.encode()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", [None, "", "changeme", "CHANGE-ME-reports-link-secret-long-enough-to-pass", "s" * 31])
def test_production_refuses_a_missing_or_placeholder_secret(tmp_path: Path, value: str | None) -> None:
    configured = SecretStr(value) if value is not None else None
    with pytest.raises(LinkSecretError, match=VARIABLE):
        load_link_secret(configured, production=True, variable=VARIABLE, directory=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_development_generates_one_secret_once_and_keeps_it(tmp_path: Path) -> None:
    directory = tmp_path / "exports"
    first = load_link_secret(None, production=False, variable=VARIABLE, directory=directory)
    assert len(first) >= 32
    assert (directory / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    # A weak configured value in development is taken as it is (tests and demos set short ones).
    assert load_link_secret(SecretStr("dev"), production=False, variable=VARIABLE, directory=directory) == b"dev"
    assert load_link_secret(None, production=False, variable=VARIABLE, directory=directory) == first
    other = load_link_secret(None, production=False, variable=VARIABLE, directory=directory, file_name=".links")
    assert other != first and (directory / ".links").exists()


def test_concurrent_starters_agree_on_the_generated_secret(tmp_path: Path) -> None:
    def start(_: int) -> bytes:
        return load_link_secret(None, production=False, variable=VARIABLE, directory=tmp_path)

    with ThreadPoolExecutor(max_workers=8) as pool:
        secrets = set(pool.map(start, range(16)))
    assert len(secrets) == 1


def test_an_unusable_secret_file_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_bytes(b"short")
    with pytest.raises(LinkSecretError, match=r"\.url-secret"):
        load_link_secret(None, production=False, variable=VARIABLE, directory=tmp_path)

"""Schemathesis against the gateway's combined OpenAPI (issue 13): every operation of the six services, as
an admin and as a technician, each signed in through the gateway.

For each operation and role, of valid data and of invalid data: schemathesis's coverage cases (boundary and
missing values, wrong types: one per documented edge, up to `MIF_FUZZ_COVERAGE` of them) and
`MIF_FUZZ_EXAMPLES` Hypothesis examples from a fixed seed (`MIF_FUZZ_SEED`). Every answer must pass
`not_a_server_error`, `status_code_conformance`, `content_type_conformance` and
`response_schema_conformance`: no 5xx at all (every service is up: the documented 503s are for outages),
and every status, content type and body as the document says (errors are `application/problem+json`
`Problem`s, `mif_common.openapi`). All the findings are collected and reported together, one each with a
curl command that reproduces it.

The suite runs on a database and a RabbitMQ vhost of its own (the fuzzer creates, edits and deletes
whatever the API lets an admin touch), with the gateway's rate limits and auth's sign-in lockout raised so
that the requests reach the services rather than a 429. A few rows exist before it starts (a client, an
equipment, a technician, an intervention, a plan), so that small ids name something.

`make fuzz` runs the long variant (every coverage case, many more examples). The counts (operations,
requests, findings, time) are printed at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mif_auth.testing import PASSWORD
from mif_common.testing.infra import Infra
from mif_common.testing.plugin import TestDatabase
from tests.support import ADMIN_EMAIL, Suite, own_suite, post_until_created

EXAMPLES = int(os.environ.get("MIF_FUZZ_EXAMPLES", "6"))
# Coverage cases per operation, role and valid/invalid data; "all" (what `make fuzz` sets) for every one.
_COVERAGE = os.environ.get("MIF_FUZZ_COVERAGE", "12")
COVERAGE: int | None = None if _COVERAGE == "all" else int(_COVERAGE)
SEED = int(os.environ.get("MIF_FUZZ_SEED", "20260413"))
REQUEST_TIMEOUT = 15.0
# An endless answer (the notifications' Server-Sent Events) is read this long, then checked.
STREAM_TIMEOUT = 0.5
# Access tokens live 15 minutes: a long run renews them with the refresh token before that.
RENEW_AFTER_SECONDS = 600.0

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("own-suite"),  # tests/conftest.py: one suite of their own at a time
    pytest.mark.timeout(int(os.environ.get("MIF_FUZZ_TIMEOUT", "900"))),
]


@dataclass
class Credentials:
    """A signed-in user; renews its access token with its refresh token when it gets old."""

    suite: Suite
    role: str
    access: str
    refresh: str
    obtained: float = field(default_factory=time.monotonic)

    @classmethod
    def sign_in(cls, suite: Suite, role: str, username: str) -> Credentials:
        response = httpx.post(f"{suite.url}/api/v1/auth/login", data={"username": username, "password": PASSWORD})
        assert response.status_code == 200, response.text
        tokens = response.json()
        return cls(suite, role, tokens["access_token"], tokens["refresh_token"])

    def headers(self) -> dict[str, str]:
        if time.monotonic() - self.obtained > RENEW_AFTER_SECONDS:
            response = httpx.post(f"{self.suite.url}/api/v1/auth/refresh", json={"refresh_token": self.refresh})
            assert response.status_code == 200, f"{self.role} could not renew its token: {response.text}"
            tokens = response.json()
            self.access, self.refresh, self.obtained = tokens["access_token"], tokens["refresh_token"], time.monotonic()
        return {"Authorization": f"Bearer {self.access}"}


@dataclass(frozen=True)
class Finding:
    role: str
    operation: str
    check: str
    status: int

    def line(self, message: str, curl: str, body: str) -> str:
        return (
            f"[{self.role}] {self.operation} -> {self.status}: {self.check}\n"
            f"    {message.strip().replace(chr(10), chr(10) + '    ')}\n"
            f"    answer: {body}\n    {curl}"
        )


@dataclass
class Run:
    """What one fuzz run sent and found."""

    requests: int = 0
    operations: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    findings: dict[Finding, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # operation -> why it could not be fuzzed

    def record(self, role: str, case: schemathesis.Case, response: schemathesis.Response | None, exc: Any) -> None:
        label = case.operation.label
        if response is None:
            # No answer at all (a timeout, a reset connection): as bad as a 5xx.
            finding = Finding(role, label, f"no answer: {type(exc).__name__}", 0)
            self.findings.setdefault(finding, finding.line(str(exc)[:300], _curl(case), "-"))
            return
        failures: list[Failure] = list(exc.exceptions) if isinstance(exc, FailureGroup) else []
        for failure in failures:
            finding = Finding(role, label, failure.title, response.status_code)
            if finding not in self.findings:
                body = response.text[:400] if response.text else "(empty)"
                self.findings[finding] = finding.line(failure.message[:600], _curl(case), body)


def _curl(case: schemathesis.Case) -> str:
    try:
        return case.as_curl_command(headers={"Authorization": "Bearer $TOKEN"})
    except Exception as exc:  # a case curl cannot express (binary parts) is still reported
        return f"(no curl command: {exc})"


def _streams(operation: schemathesis.APIOperation) -> bool:
    """Whether the operation answers an endless stream (Server-Sent Events)."""
    responses = operation.definition.raw.get("responses", {})
    return any("text/event-stream" in (answer.get("content") or {}) for answer in responses.values())


def _send(run: Run, role: str, case: schemathesis.Case, credentials: Credentials, session: requests.Session) -> None:
    headers = credentials.headers()
    run.requests += 1
    try:
        if _streams(case.operation):
            try:
                # (connect, read): an event stream is read for `read` seconds in all, then checked.
                response = case.call(session=session, headers=headers, timeout=(REQUEST_TIMEOUT, STREAM_TIMEOUT))
            except requests.ReadTimeout:  # its head came later than that (a loaded machine): once more, patiently
                response = case.call(session=session, headers=headers, timeout=(REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        else:
            response = case.call(session=session, headers=headers, timeout=REQUEST_TIMEOUT)
    except (requests.RequestException, OSError) as exc:
        run.record(role, case, None, exc)
        return
    run.statuses[response.status_code] += 1
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except FailureGroup as exc:
        run.record(role, case, response, exc)


def fuzz_operation(
    run: Run,
    operation: schemathesis.APIOperation,
    credentials: Credentials,
    session: requests.Session,
    *,
    examples: int,
    coverage: int | None,
) -> None:
    role = credentials.role
    run.operations.add(operation.label)
    schema = operation.schema
    generation = schema.config.generation_for(operation=operation, phase="coverage")
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if coverage != 0 else ():
        cases = schema.iter_coverage_cases(operation, generation_modes=[mode], generation_config=generation)
        for case in cases if coverage is None else _first(cases, coverage):
            _send(run, role, case, credentials, session)
    if examples <= 0:
        return
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @seed(SEED)
        @settings(
            max_examples=examples,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: findings are collected, not raised
            deadline=None,
            database=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            verbosity=hypothesis.Verbosity.quiet,
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def examples_of(case: schemathesis.Case) -> None:
            _send(run, role, case, credentials, session)

        try:
            examples_of()
        except hypothesis.errors.Unsatisfiable:
            # Invalid data for an operation that takes nothing (GET /auth/me): there is none to make.
            continue
        except Exception as exc:
            run.errors[f"[{role}] {operation.label} ({mode.value})"] = f"{type(exc).__name__}: {exc}"


def _first(cases: Iterator[schemathesis.Case], count: int) -> Iterator[schemathesis.Case]:
    for index, case in enumerate(cases):
        if index >= count:
            return
        yield case


# --- the suite and its users -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_suite(
    mif_infra: Infra, mif_fresh_database: Callable[[str], TestDatabase], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Suite]:
    """The whole suite on a database and a vhost of its own: the fuzzer changes whatever an admin may."""
    overrides = {
        # The fuzzer sends a few hundred requests a second from one address and two accounts; the limits
        # are for real clients (their 429 is documented, and gateway/tests check it).
        "MIF_GATEWAY_RATE_USER_PER_WINDOW": "1000000",
        "MIF_GATEWAY_RATE_ANONYMOUS_PER_WINDOW": "1000000",
        "MIF_GATEWAY_LOGIN_ATTEMPTS_PER_IP": "1000000",
        "MIF_GATEWAY_LOGIN_PER_ACCOUNT": "1000000",
        "MIF_AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT": "1000000",
        "MIF_AUTH_LOGIN_MAX_FAILURES_PER_IP": "1000000",
    }
    with own_suite(mif_infra, mif_fresh_database, tmp_path_factory, label="fuzz", overrides=overrides) as suite:
        yield suite


@pytest.fixture(scope="module")
def fuzz_users(fuzz_suite: Suite) -> dict[str, Credentials]:
    """The bootstrap admin and a technician with its planning profile; a few rows for small ids to name."""
    suite, admin = fuzz_suite, fuzz_suite.login(ADMIN_EMAIL)
    client = post_until_created(suite, admin, "/api/v1/clients", {"nom_entreprise": "Fuzz SA", "ville": "Rabat"})
    machine = {"nom": "Pompe P-1", "type": "pompe", "localisation": "Atelier", "client_id": client["id"]}
    equipement = post_until_created(suite, admin, "/api/v1/equipements", machine)
    technicien = {"username": "fuzztech", "full_name": "Fuzz Technicien", "email": "fuzztech@fuzz.mif.ma"}
    user = post_until_created(suite, admin, "/api/v1/users", {**technicien, "role": "technicien", "password": PASSWORD})
    post_until_created(suite, admin, "/api/v1/techniciens/competences", {"nom": "Hydraulique"})
    profile = {"user_id": user["id"], "equipe": "Fuzz", "competences_ids": [1]}
    post_until_created(suite, admin, "/api/v1/techniciens", profile)
    work = {"titre": "Fuite", "type": "corrective", "priorite": "haute", "equipement_id": equipement["id"]}
    post_until_created(suite, admin, "/api/v1/interventions", work)
    post_until_created(suite, admin, "/api/v1/planning", {"equipement_id": equipement["id"], "frequence": "mensuel"})
    return {
        # The technician first: the admin's fuzzing may then change or deactivate its account.
        "technicien": Credentials.sign_in(suite, "technicien", "fuzztech"),
        "admin": Credentials.sign_in(suite, "admin", ADMIN_EMAIL),
    }


# --- the test ----------------------------------------------------------------------------------------


def test_every_operation_answers_as_documented(fuzz_suite: Suite, fuzz_users: dict[str, Credentials]) -> None:
    started = time.monotonic()
    document = httpx.get(f"{fuzz_suite.url}/openapi.json", timeout=REQUEST_TIMEOUT).json()
    assert document["x-mif-unavailable"] == [], "every service's operations are in the combined document"
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=fuzz_suite.url)
    schema.config.output.sanitization.update(enabled=False)  # curl commands that reproduce, passwords included
    operations = [result.ok() for result in schema.get_all_operations()]
    # Every operation the gateway routes (the policy's rows but internal ones and the services' own docs).
    assert len(operations) >= 85, [op.label for op in operations]
    run = Run()
    spent: dict[str, float] = {}
    with contextlib.closing(requests.Session()) as session:
        for credentials in fuzz_users.values():
            for operation in operations:
                began = time.monotonic()
                fuzz_operation(run, operation, credentials, session, examples=EXAMPLES, coverage=COVERAGE)
                spent[operation.label] = spent.get(operation.label, 0.0) + time.monotonic() - began
    elapsed = time.monotonic() - started
    slowest = ", ".join(f"{label} {seconds:.0f} s" for label, seconds in sorted(spent.items(), key=lambda x: -x[1])[:5])
    summary = (
        f"fuzzed {len(run.operations)} operations as {' and '.join(fuzz_users)}: {run.requests} requests in "
        f"{elapsed:.0f} s (coverage cases per operation: {_COVERAGE}, examples per mode: {EXAMPLES}, seed {SEED}); "
        f"statuses {dict(sorted(run.statuses.items()))}; {len(run.findings)} findings; slowest: {slowest}"
    )
    print(summary)
    report = os.environ.get("MIF_FUZZ_REPORT")
    if report:
        with open(report, "w") as out:
            json.dump(
                {"summary": summary, "findings": list(run.findings.values()), "errors": run.errors}, out, indent=1
            )
    if run.errors:
        pytest.fail("operations that could not be fuzzed:\n" + "\n".join(f"{k}: {v}" for k, v in run.errors.items()))
    if run.findings:
        pytest.fail(f"{summary}\n\n" + "\n\n".join(sorted(run.findings.values())), pytrace=False)

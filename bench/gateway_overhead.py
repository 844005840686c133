"""Gateway overhead: the same small authenticated GET straight to a service and through the gateway.

    .venv/bin/python bench/gateway_overhead.py                  # real auth service, GET /api/v1/auth/me
    .venv/bin/python bench/gateway_overhead.py --upstream stub  # a tiny stand-in service, no database
    .venv/bin/python bench/gateway_overhead.py --upstream-cmd 'uvicorn --factory my.app:create_app --port {port}' \\
        --service assets --path /api/v1/equipements --token "$TOKEN"

Every process is started here (uvicorn, one worker each, loopback, free ports): the upstream, and one
gateway per upstream client (`aiohttp`, `httpx2`), all pointed at the same upstream. At concurrency 1
and 16 the targets take turns in short rounds (direct, gateway[aiohttp], gateway[httpx2], then the
reverse order, ...), so drift on the machine hits all of them alike. Printed: median and p95
latency, throughput, CPU per request of each gateway process and of the service (from /proc), the
gateway's added median at c=1 (target ≤ 1 ms) and gateway ÷ direct throughput at c=16 (target
≥ 35 %). Bounded loops only; the load generator shares the machine, which is part of the honest
picture on a small box.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from fastapi import Request  # module level: the stub's route annotations resolve here
from support import (  # bench/support.py, next to this script
    PYTHON,
    Processes,
    add_admin_dsn,
    bootstrap_admin,
    cpu_seconds,
    free_port,
    percentile,
    provision_databases,
    spread,
    uvicorn_argv,
    wait_ready,
)

THIS_FILE = Path(__file__).resolve()
ADMIN_PASSWORD = "Gw-Overhead-7!xQz"  # a throwaway account in a throwaway database
CLIENTS = ("aiohttp", "httpx2")


# --- upstreams -------------------------------------------------------------------------------------


@dataclass
class Upstream:
    url: str
    service: str
    path: str
    token: str
    pid: int | None = None
    jwks_url: str | None = None
    issuer: str = "mif-auth"
    audience: str = "mif-api"


async def start_auth(procs: Processes, admin_dsn: str) -> Upstream:
    """Provision a database, migrate auth, bootstrap an admin, start auth, sign in."""
    url = (await provision_databases(admin_dsn, "mif_bench_gateway", ["auth"]))["auth"]
    env = {
        "MIF_AUTH_DATABASE_URL": url,
        "MIF_AUTH_KEY_DIR": str(procs.tmp / "auth-keys"),
        "MIF_AUTH_ARGON2_MEMORY_KIB": "1024",  # cheap hashing: throwaway accounts
        "MIF_AUTH_ARGON2_TIME_COST": "1",
        "MIF_AUTH_BACKGROUND_TASKS": "false",
        "MIF_AUTH_LOG_LEVEL": "WARNING",
        "MIF_ADMIN_EMAIL": "bench@mif.ma",
        "MIF_ADMIN_USERNAME": "bench",
        "MIF_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    await bootstrap_admin(env)
    port = free_port()
    proc = procs.start("auth", uvicorn_argv("mif_auth.main:create_app", port), env)
    base = f"http://127.0.0.1:{port}"
    await wait_ready(f"{base}/health/live", proc)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/api/v1/auth/login", data={"username": "bench", "password": ADMIN_PASSWORD}) as response,
    ):
        body = await response.json()
        if response.status != 200:
            raise RuntimeError(f"login failed: {response.status} {body}")
    return Upstream(url=base, service="auth", path="/api/v1/auth/me", token=body["access_token"], pid=proc.pid)


async def start_stub(procs: Processes) -> Upstream:
    """A stand-in service (this file, `--serve-stub`): JWKS + GET /api/v1/auth/me verifying the token."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from mif_common.testing.keys import TestKeys

    keys = TestKeys(Ed25519PrivateKey.generate(), kid=f"bench-{uuid.uuid4().hex[:8]}")
    pem = procs.tmp / "stub-key.pem"
    pem.write_bytes(
        keys.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    port = free_port()
    proc = procs.start(
        "stub",
        [PYTHON, str(THIS_FILE), "--serve-stub", str(port), "--stub-key", str(pem), "--stub-kid", keys.kid],
        {},
    )
    base = f"http://127.0.0.1:{port}"
    await wait_ready(f"{base}/health/live", proc)
    return Upstream(
        url=base, service="auth", path="/api/v1/auth/me", token=keys.token("admin", user_id=1), pid=proc.pid
    )


def serve_stub(port: int, key_file: str, kid: str) -> None:
    """The stub service process: a FastAPI app shaped like a suite service, no database."""
    import uvicorn
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from fastapi import FastAPI

    from mif_common.auth.tokens import StaticKeys, TokenVerifier
    from mif_common.errors import install_error_handlers
    from mif_common.request_context import RequestIdMiddleware, StripTrailingSlashMiddleware
    from mif_common.testing.keys import TestKeys

    key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    keys = TestKeys(key, kid)
    verifier = TokenVerifier(StaticKeys(keys.jwks), issuer="mif-auth", audience="mif-api", algorithms=["EdDSA"])
    app = FastAPI(redirect_slashes=False)
    install_error_handlers(app)

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/auth/.well-known/jwks.json")
    async def jwks() -> dict[str, Any]:
        return keys.jwks

    @app.get("/api/v1/auth/internal/token-states")
    async def token_states() -> list[dict[str, Any]]:
        return []

    @app.get("/api/v1/auth/internal/token-states/{user_id}")
    async def token_state(user_id: int) -> dict[str, Any]:  # every bench user exists
        return {"user_id": user_id, "is_active": True, "token_version": 0}

    @app.get("/api/v1/auth/me")
    async def me(request: Request) -> dict[str, Any]:
        token = request.headers.get("authorization", "").partition(" ")[2]
        principal = await verifier.principal(token)
        return {"id": principal.user_id, "username": "bench", "email": "bench@mif.local",
                "full_name": "Bench", "role": principal.role.value, "is_active": True}  # fmt: skip

    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(StripTrailingSlashMiddleware)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def start_command(procs: Processes, args: argparse.Namespace) -> Upstream:
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in shlex.split(args.upstream_cmd)]
    if argv and argv[0] in ("uvicorn", "python"):
        argv = [PYTHON, "-m", "uvicorn", *argv[1:]] if argv[0] == "uvicorn" else [PYTHON, *argv[1:]]
    proc = procs.start("upstream", argv, {})
    base = f"http://127.0.0.1:{port}"
    await wait_ready(f"{base}{args.ready_path}", proc)
    if not args.token:
        raise SystemExit("--upstream-cmd needs --token (a bearer token the upstream and the gateway accept)")
    return Upstream(
        url=base, service=args.service, path=args.path, token=args.token, jwks_url=args.jwks_url, pid=proc.pid
    )


async def start_gateway(procs: Processes, upstream: Upstream, client: str) -> Target:
    from mif_common.suite import ALL_SERVICES

    port = free_port()
    # Services other than the measured one point at a closed port: they are simply down.
    dead = f"http://127.0.0.1:{free_port()}"
    upstreams = {s.name: dead for s in ALL_SERVICES}
    upstreams[upstream.service] = upstream.url
    if upstream.service != "auth" and upstream.jwks_url is None:
        upstreams["auth"] = upstream.url
    env = {
        "MIF_GATEWAY_UPSTREAMS": json.dumps(upstreams),
        "MIF_GATEWAY_UPSTREAM_CLIENT": client,
        "MIF_GATEWAY_LOG_LEVEL": "WARNING",
        "MIF_GATEWAY_JWT_ISSUER": upstream.issuer,
        "MIF_GATEWAY_JWT_AUDIENCE": upstream.audience,
        # One user hammering: raise the per-user limit far above what the run sends.
        "MIF_GATEWAY_RATE_USER_PER_WINDOW": "100000000",
        "MIF_GATEWAY_RATE_ANONYMOUS_PER_WINDOW": "100000000",
    }
    if upstream.jwks_url:
        env["MIF_GATEWAY_JWKS_URL"] = upstream.jwks_url
    proc = procs.start(f"gateway-{client}", uvicorn_argv("mif_gateway.main:create_app", port), env)
    base = f"http://127.0.0.1:{port}"
    await wait_ready(f"{base}/health/live", proc)
    return Target(f"gateway[{client}]", base + upstream.path, proc.pid)


# --- load ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    gateway_pid: int | None = None  # None: the service itself


@dataclass
class Sample:
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    errors: int = 0
    first_error: str | None = None
    gateway_cpu: float = 0.0
    upstream_cpu: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies)


async def run_load(session: aiohttp.ClientSession, url: str, token: str, concurrency: int, total: int) -> Sample:
    """`total` GETs split over `concurrency` workers, each sequential on its keep-alive connection."""
    sample = Sample()
    headers = {"Authorization": f"Bearer {token}"}

    async def worker(n: int) -> None:
        for _ in range(n):
            start = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                body = await response.read()
                ok = response.status == 200
            if ok:
                sample.latencies.append(time.perf_counter() - start)
            else:
                sample.errors += 1
                if sample.first_error is None:
                    sample.first_error = f"{url}: HTTP {response.status} {body[:300]!r}"

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in spread(total, concurrency)))
    sample.elapsed = time.perf_counter() - started
    return sample


@dataclass
class Result:
    target: str
    concurrency: int
    requests: int
    errors: int
    median_ms: float
    p95_ms: float
    rps: float
    gateway_cpu_us: float  # CPU the gateway process spent per request (0 for direct)
    upstream_cpu_us: float


def summarise(target: str, concurrency: int, samples: list[Sample]) -> Result:
    latencies = [x for s in samples for x in s.latencies]
    count = sum(s.count for s in samples)
    elapsed = sum(s.elapsed for s in samples)
    return Result(
        target=target,
        concurrency=concurrency,
        requests=count,
        errors=sum(s.errors for s in samples),
        median_ms=statistics.median(latencies) * 1000 if latencies else float("nan"),
        p95_ms=percentile(latencies, 0.95) * 1000 if latencies else float("nan"),
        rps=count / elapsed if elapsed else 0.0,
        gateway_cpu_us=sum(s.gateway_cpu for s in samples) / count * 1e6 if count else 0.0,
        upstream_cpu_us=sum(s.upstream_cpu for s in samples) / count * 1e6 if count else 0.0,
    )


async def measure(targets: list[Target], upstream: Upstream, args: argparse.Namespace) -> list[Result]:
    """Per concurrency: a warm-up, then `rounds` rounds in which every target gets the same share of
    requests, the order alternating between rounds."""
    results: list[Result] = []
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        for target in targets:  # warm-up: connections, JWKS, token cache, code paths
            await run_load(session, target.url, upstream.token, 16, 400)
        for concurrency, total in ((1, args.requests_c1), (16, args.requests_c16)):
            samples: dict[str, list[Sample]] = {t.name: [] for t in targets}
            for round_no in range(args.rounds):
                order = targets if round_no % 2 == 0 else targets[::-1]
                for target in order:
                    gw0, up0 = cpu_seconds(target.gateway_pid), cpu_seconds(upstream.pid)
                    sample = await run_load(session, target.url, upstream.token, concurrency, total // args.rounds)
                    sample.gateway_cpu = cpu_seconds(target.gateway_pid) - gw0
                    sample.upstream_cpu = cpu_seconds(upstream.pid) - up0
                    samples[target.name].append(sample)
            results.extend(summarise(t.name, concurrency, samples[t.name]) for t in targets)
            for name, target_samples in samples.items():
                first = next((s.first_error for s in target_samples if s.first_error), None)
                if first:
                    print(f"errors from {name} at c={concurrency}, the first: {first}", file=sys.stderr)
    return results


def report(results: list[Result], upstream: Upstream) -> dict[str, Any]:
    print(f"\nGET {upstream.path} ({upstream.service} service), loopback, one uvicorn worker per process\n")
    print(
        f"{'target':<20} {'c':>3} {'requests':>9} {'errors':>6} {'median ms':>10} {'p95 ms':>8} {'req/s':>9}"
        f" {'gw CPU us/req':>14} {'svc CPU us/req':>15}"
    )
    for r in results:
        print(
            f"{r.target:<20} {r.concurrency:>3} {r.requests:>9} {r.errors:>6} "
            f"{r.median_ms:>10.3f} {r.p95_ms:>8.3f} {r.rps:>9.0f} {r.gateway_cpu_us:>14.0f} {r.upstream_cpu_us:>15.0f}"
        )
    by = {(r.target, r.concurrency): r for r in results}
    summary: dict[str, Any] = {}
    print()
    for target in sorted({r.target for r in results} - {"direct"}):
        added = by[(target, 1)].median_ms - by[("direct", 1)].median_ms
        ratio = by[(target, 16)].rps / by[("direct", 16)].rps if by[("direct", 16)].rps else 0.0
        ok_latency = "ok" if added <= 1.0 else "MISSED"
        ok_ratio = "ok" if ratio >= 0.35 else "MISSED"
        print(
            f"{target:<20} added median at c=1: {added:+.3f} ms (target <= 1 ms: {ok_latency}); "
            f"throughput at c=16: {ratio:.0%} of direct (target >= 35 %: {ok_ratio})"
        )
        summary[target] = {"added_median_ms_c1": round(added, 3), "throughput_ratio_c16": round(ratio, 3)}
    return summary


async def main(args: argparse.Namespace) -> int:
    procs = Processes("mif-bench-gw-")
    failed = True
    try:
        if args.upstream_cmd:
            upstream = await start_command(procs, args)
        elif args.upstream == "stub":
            upstream = await start_stub(procs)
        else:
            upstream = await start_auth(procs, args.admin_dsn)
        targets = [Target("direct", upstream.url + upstream.path)]
        for client in args.clients:
            targets.append(await start_gateway(procs, upstream, client))
        results = await measure(targets, upstream, args)
        summary = report(results, upstream)
        if args.json:
            text = json.dumps({"results": [r.__dict__ for r in results], "summary": summary}, indent=2)
            await asyncio.to_thread(Path(args.json).write_text, text)
        failed = any(r.errors for r in results)
        return 1 if failed else 0
    finally:
        procs.close(failed=failed)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", choices=("auth", "stub"), default="auth")
    parser.add_argument("--upstream-cmd", help="command starting the upstream; {port} is replaced by a free port")
    parser.add_argument("--service", default="auth", help="service name the upstream stands for (--upstream-cmd)")
    parser.add_argument("--path", default="/api/v1/auth/me", help="path to GET (--upstream-cmd)")
    parser.add_argument("--token", help="bearer token (--upstream-cmd)")
    parser.add_argument("--jwks-url", help="JWKS the gateway verifies with (--upstream-cmd; default: the upstream)")
    parser.add_argument("--ready-path", default="/health/live", help="readiness path of the upstream (--upstream-cmd)")
    parser.add_argument("--clients", type=lambda s: [c for c in s.split(",") if c], default=list(CLIENTS))
    parser.add_argument("--requests-c1", type=int, default=3000, help="requests per target at concurrency 1")
    parser.add_argument("--requests-c16", type=int, default=12000, help="requests per target at concurrency 16")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per concurrency")
    add_admin_dsn(parser)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--serve-stub", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stub-key", help=argparse.SUPPRESS)
    parser.add_argument("--stub-kid", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for client in args.clients:
        if client not in CLIENTS:
            parser.error(f"unknown client {client!r} (choose from {', '.join(CLIENTS)})")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_stub:
        serve_stub(arguments.serve_stub, arguments.stub_key, arguments.stub_kid)
        raise SystemExit(0)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    raise SystemExit(runner(main(arguments)))

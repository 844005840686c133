"""Sign-in cost: the password hashing of before (bcrypt cost 12) against the current one (argon2id at
OWASP's m=19 MiB, t=2, p=1), side by side.

    .venv/bin/python bench/sign_in.py                      # hash timings, then sign-ins at c=4
    .venv/bin/python bench/sign_in.py --rounds 4 --requests 32 --json out.json
    .venv/bin/python bench/sign_in.py --hash-only          # the hash timings alone (no processes)

1. Hashes, in this process: the time of one verification, single-threaded (median), and what four
   verifications at a time on a thread pool give on this machine (per verification and per second), for
   bcrypt 10 and 12 and argon2id at two of OWASP's parameter sets.
2. Sign-ins through the gateway, on loopback: a throwaway database `mif_bench_sign_in` (provisioned and
   migrated like bench/gateway_overhead.py's `start_auth`), a first admin made by `python -m
   mif_auth.bootstrap`, then TWO auth processes on that database, each behind a gateway of its own
   (uvicorn, one worker each, free ports): "old" configured as auth was before
   (`MIF_AUTH_PASSWORD_SCHEME=bcrypt`, `MIF_AUTH_BCRYPT_ROUNDS=12`) and "new" with the defaults. Each
   creates its own users through its admin API, so their hashes are made with its scheme (checked in the
   database before and after: the old users stay bcrypt 12, none is upgraded). Four workers (c=4), each
   signing in as its own user with `POST /api/v1/auth/login`, one request after the other; the two
   targets take turns in rounds, order alternating, so drift on the machine hits both alike.

Printed: p50/p95 latency and sign-ins per second of each, auth's CPU per sign-in (from /proc), and the
target (new p50 ≤ 100 ms at c=4). Bounded: `--rounds` × `--requests` sign-ins per target, plus a warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from support import (  # bench/support.py, next to this script
    Processes,
    add_admin_dsn,
    bootstrap_admin,
    cpu_seconds,
    database_dsn,
    free_port,
    percentile,
    provision_databases,
    spread,
    uvicorn_argv,
    wait_ready,
)

DATABASE = "mif_bench_sign_in"
ADMIN_PASSWORD = "Mesure-Connexion-7!xQz"  # throwaway accounts in a throwaway database
USER_PASSWORD = "Bench!Sign-in-42"
CONCURRENCY = 4
SCHEMES: dict[str, dict[str, str]] = {
    "old: bcrypt 12": {"MIF_AUTH_PASSWORD_SCHEME": "bcrypt", "MIF_AUTH_BCRYPT_ROUNDS": "12"},
    "new: argon2id 19 MiB t=2": {},  # the defaults
}


# --- 1. hashes -------------------------------------------------------------------------------------


def measure_hashes(samples: int) -> list[dict[str, Any]]:
    from mif_auth.passwords import PasswordHashing, check_hash, make_hash

    cases = {
        "bcrypt 12": PasswordHashing(scheme="bcrypt", bcrypt_rounds=12),
        "bcrypt 10": PasswordHashing(scheme="bcrypt", bcrypt_rounds=10),
        "argon2id m=19 MiB t=2 p=1": PasswordHashing(),
        "argon2id m=46 MiB t=1 p=1": PasswordHashing(argon2_memory_kib=47_104, argon2_time_cost=1),
    }
    rows = []
    for name, hashing in cases.items():
        stored = make_hash(USER_PASSWORD, hashing)
        check_hash(USER_PASSWORD, stored)  # warm
        single = []
        for _ in range(samples):
            started = time.perf_counter()
            assert check_hash(USER_PASSWORD, stored)
            single.append(time.perf_counter() - started)
        each: list[float] = []

        def timed(_: int, stored: str = stored, each: list[float] = each) -> None:
            started = time.perf_counter()
            check_hash(USER_PASSWORD, stored)
            each.append(time.perf_counter() - started)

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            started = time.perf_counter()
            list(pool.map(timed, range(samples * 2)))
            elapsed = time.perf_counter() - started
        rows.append(
            {
                "hashing": name,
                "single_ms": statistics.median(single) * 1000,
                "c4_each_ms": statistics.median(each) * 1000,
                "c4_per_second": samples * 2 / elapsed,
            }
        )
    print(f"\nOne password verification, in this process ({os.cpu_count()} CPUs)\n")
    print(f"{'hashing':<28} {'single-threaded ms':>19} {'4 threads: ms each':>19} {'4 threads: per s':>17}")
    for r in rows:
        print(f"{r['hashing']:<28} {r['single_ms']:>19.1f} {r['c4_each_ms']:>19.1f} {r['c4_per_second']:>17.1f}")
    return rows


# --- 2. sign-ins -----------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    auth_url: str
    login_url: str
    auth_pid: int
    usernames: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    errors: int = 0
    first_error: str | None = None
    auth_cpu: float = 0.0


async def start_target(procs: Processes, name: str, env: dict[str, str]) -> Target:
    """One auth process configured with `env`, and a gateway in front of it."""
    from mif_common.suite import ALL_SERVICES

    label = name.split(":")[0]
    port = free_port()
    auth = procs.start(f"auth-{label}", uvicorn_argv("mif_auth.main:create_app", port), env)
    auth_url = f"http://127.0.0.1:{port}"
    await wait_ready(f"{auth_url}/health/live", auth)
    dead = f"http://127.0.0.1:{free_port()}"  # the other services are simply down
    upstreams = {s.name: dead for s in ALL_SERVICES} | {"auth": auth_url}
    gateway_port = free_port()
    gateway_env = {
        "MIF_GATEWAY_UPSTREAMS": json.dumps(upstreams),
        "MIF_GATEWAY_LOG_LEVEL": "WARNING",
        "MIF_GATEWAY_RATE_LIMIT_ENABLED": "false",  # one address signing in over and over
        "MIF_GATEWAY_LOGIN_ATTEMPTS_PER_IP": "100000000",
        "MIF_GATEWAY_REVOCATION_ENABLED": "false",
    }
    gateway = procs.start(f"gateway-{label}", uvicorn_argv("mif_gateway.main:create_app", gateway_port), gateway_env)
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    await wait_ready(f"{gateway_url}/health/live", gateway)
    return Target(name, auth_url, f"{gateway_url}/api/v1/auth/login", auth.pid)


async def login(session: aiohttp.ClientSession, url: str, username: str, password: str) -> dict[str, Any]:
    async with session.post(url, data={"username": username, "password": password}) as response:
        body: dict[str, Any] = await response.json(content_type=None)
        if response.status != 200:
            raise RuntimeError(f"sign-in of {username} at {url}: {response.status} {body}")
        return body


async def create_users(session: aiohttp.ClientSession, target: Target, admin_token: str, label: str) -> None:
    """`CONCURRENCY` users made by this target's auth, so with its hashing."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    for n in range(CONCURRENCY):
        username = f"{label}{n}"
        body = {
            "username": username,
            "full_name": f"Bench {label} {n}",
            "email": f"{username}@bench.mif.ma",
            "role": "technicien",
            "password": USER_PASSWORD,
        }
        async with session.post(f"{target.auth_url}/api/v1/users", json=body, headers=headers) as response:
            if response.status != 201:
                raise RuntimeError(f"creating {username}: {response.status} {await response.text()}")
        target.usernames.append(username)


async def hash_prefixes(admin_dsn: str, usernames: list[str]) -> dict[str, str]:
    import asyncpg

    conn = await asyncpg.connect(database_dsn(admin_dsn, DATABASE))
    try:
        rows = await conn.fetch(
            'SELECT username, password_hash FROM auth."user" WHERE username = ANY($1::text[])', usernames
        )
    finally:
        await conn.close()
    # The scheme and parameters: `$2b$12` of bcrypt, `$argon2id$v=19$m=...,t=...,p=...` of argon2.
    return {r["username"]: _scheme_part(r["password_hash"]) for r in rows}


def _scheme_part(password_hash: str) -> str:
    return password_hash.rsplit("$", 2 if password_hash.startswith("$argon2") else 1)[0][:40]


async def run_round(session: aiohttp.ClientSession, target: Target, total: int, record: bool) -> None:
    per_worker = spread(total, CONCURRENCY)

    async def worker(username: str, n: int) -> None:
        for _ in range(n):
            started = time.perf_counter()
            async with session.post(target.login_url, data={"username": username, "password": USER_PASSWORD}) as r:
                body = await r.read()
                ok = r.status == 200
            if not record:
                continue
            if ok:
                target.latencies.append(time.perf_counter() - started)
            else:
                target.errors += 1
                target.first_error = target.first_error or f"HTTP {r.status} {body[:300]!r}"

    cpu0, started = cpu_seconds(target.auth_pid), time.perf_counter()
    await asyncio.gather(*(worker(u, n) for u, n in zip(target.usernames, per_worker, strict=True)))
    if record:
        target.elapsed += time.perf_counter() - started
        target.auth_cpu += cpu_seconds(target.auth_pid) - cpu0


async def measure_sign_ins(args: argparse.Namespace, procs: Processes) -> list[dict[str, Any]]:
    url = (await provision_databases(args.admin_dsn, DATABASE, ["auth"]))["auth"]
    base_env = {
        "MIF_AUTH_DATABASE_URL": url,
        "MIF_AUTH_KEY_DIR": str(procs.tmp / "auth-keys"),  # one signing key, made by the first auth
        "MIF_AUTH_BACKGROUND_TASKS": "false",
        "MIF_AUTH_LOG_LEVEL": "WARNING",
        "MIF_ADMIN_EMAIL": "bench@mif.ma",
        "MIF_ADMIN_USERNAME": "bench",
        "MIF_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    await bootstrap_admin(base_env)
    targets = [await start_target(procs, name, base_env | env) for name, env in SCHEMES.items()]
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        for target, label in zip(targets, ("old", "new"), strict=True):
            admin = await login(session, f"{target.auth_url}/api/v1/auth/login", "bench", ADMIN_PASSWORD)
            await create_users(session, target, admin["access_token"], label)
        before = await hash_prefixes(args.admin_dsn, [u for t in targets for u in t.usernames])
        for target in targets:  # warm-up: connections, code paths, the dummy hash
            await run_round(session, target, CONCURRENCY * 2, record=False)
        for round_no in range(args.rounds):
            for target in targets if round_no % 2 == 0 else targets[::-1]:
                await run_round(session, target, args.requests, record=True)
    after = await hash_prefixes(args.admin_dsn, [u for t in targets for u in t.usernames])
    print("\nStored hashes (scheme and parameters) before -> after the run:")
    for username in sorted(before):
        print(f"  {username:<6} {before[username]:<32} -> {after[username]}")
    if before != after:
        raise RuntimeError("a stored hash changed during the run: the two targets did not measure what they say")
    results = []
    for t in targets:
        count = len(t.latencies)
        results.append(
            {
                "target": t.name,
                "requests": count,
                "errors": t.errors,
                "p50_ms": statistics.median(t.latencies) * 1000 if count else float("nan"),
                "p95_ms": percentile(t.latencies, 0.95) * 1000 if count else float("nan"),
                "per_second": count / t.elapsed if t.elapsed else 0.0,
                "auth_cpu_ms": t.auth_cpu / count * 1000 if count else float("nan"),
            }
        )
        if t.first_error:
            print(f"errors from {t.name}, the first: {t.first_error}", file=sys.stderr)
    print(f"\nPOST /api/v1/auth/login through the gateway, c={CONCURRENCY}, {args.rounds} alternating rounds\n")
    print(f"{'target':<26} {'sign-ins':>8} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'per s':>7} {'auth CPU ms':>12}")
    for r in results:
        print(
            f"{r['target']:<26} {r['requests']:>8} {r['errors']:>6} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} "
            f"{r['per_second']:>7.1f} {r['auth_cpu_ms']:>12.1f}"
        )
    old, new = results
    verdict = "ok" if new["p50_ms"] <= 100 else "MISSED"
    print(
        f"\nnew p50 {new['p50_ms']:.1f} ms (target <= 100 ms at c={CONCURRENCY}: {verdict}); "
        f"{old['p50_ms'] / new['p50_ms']:.1f}x faster, "
        f"{new['per_second'] / old['per_second']:.1f}x the sign-ins per second"
    )
    return results


async def main(args: argparse.Namespace) -> int:
    hashes = await asyncio.to_thread(measure_hashes, args.hash_samples)
    output: dict[str, Any] = {"hashes": hashes}
    failed = False
    if not args.hash_only:
        procs = Processes("mif-bench-sign-in-")
        failed = True
        try:
            output["sign_ins"] = await measure_sign_ins(args, procs)
            failed = any(r["errors"] for r in output["sign_ins"])
        finally:
            procs.close(failed=failed)
    if args.json:
        await asyncio.to_thread(Path(args.json).write_text, json.dumps(output, indent=2))
    return 1 if failed else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (each target once per round)")
    parser.add_argument("--requests", type=int, default=40, help="sign-ins per target and round (split over c=4)")
    parser.add_argument("--hash-samples", type=int, default=10, help="verifications per hashing, single-threaded")
    parser.add_argument("--hash-only", action="store_true", help="only the hash timings, no processes")
    add_admin_dsn(parser)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if not (1 <= args.rounds <= 100 and CONCURRENCY <= args.requests <= 10_000 and 1 <= args.hash_samples <= 100):
        parser.error("--rounds 1-100, --requests 4-10000, --hash-samples 1-100")
    return args


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))

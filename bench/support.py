"""What the bench scripts share: their processes (uvicorn on loopback and free ports, each logging to a
file of a temporary directory), readiness, the throwaway database, a stand-in for auth's JWKS, the load
loop, CPU from /proc and percentiles; and, for the side-by-side scripts, the previous build's tree.

Imported by the scripts beside it (`python bench/<script>.py` puts this directory first on sys.path).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
from aiohttp import web

from mif_common.testing.processes import free_port

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"

__all__ = [
    "PYTHON",
    "REPO",
    "Build",
    "Proc",
    "Processes",
    "add_admin_dsn",
    "bootstrap_admin",
    "cpu_seconds",
    "cpu_spent",
    "database_dsn",
    "export_tree",
    "free_port",
    "imported_from",
    "load",
    "login",
    "percentile",
    "percentile_ms",
    "postgres_cpu",
    "provision_databases",
    "serve_jwks",
    "spread",
    "start_build",
    "tree_cpu_seconds",
    "tree_env",
    "uvicorn_argv",
    "wait_ready",
]


# --- command line and database ---------------------------------------------------------------------


def add_admin_dsn(parser: argparse.ArgumentParser) -> None:
    """`--admin-dsn`: the PostgreSQL superuser DSN the throwaway databases are made with."""
    parser.add_argument("--admin-dsn", default=os.environ.get("MIF_BENCH_ADMIN_DSN", DEFAULT_ADMIN_DSN))


def database_dsn(admin_dsn: str, database: str) -> str:
    """The admin DSN pointed at another database of the same server."""
    return admin_dsn.rsplit("/", 1)[0] + "/" + database


async def provision_databases(admin_dsn: str, database: str, services: Iterable[str]) -> dict[str, str]:
    """`database` made again from scratch with each service's role and schema, migrated by its own
    migrations; each service's database URL."""
    from mif_common.migrations import upgrade
    from mif_common.provision import provision, service_database_url
    from mif_common.suite import service

    infos = [service(name) for name in services]
    await asyncio.to_thread(provision, admin_dsn, database, infos, recreate=True)
    urls = {}
    for info in infos:
        urls[info.name] = service_database_url(admin_dsn, database, info)
        await asyncio.to_thread(upgrade, info.alembic_ini, urls[info.name])
    return urls


async def bootstrap_admin(env: dict[str, str]) -> None:
    """The first admin, made by `python -m mif_auth.bootstrap` with `env` (MIF_ADMIN_* and auth's database)."""
    boot = await asyncio.to_thread(
        subprocess.run,
        [PYTHON, "-m", "mif_auth.bootstrap"],
        env={**os.environ, **env},
        capture_output=True,
        cwd=REPO,
        timeout=120,
    )
    if boot.returncode != 0:
        raise RuntimeError(f"bootstrap failed: {boot.stdout.decode()} {boot.stderr.decode()}")


async def login(http: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    """Signed in through the gateway `http` points at: the headers that carry the access token."""
    response = await http.post("/api/v1/auth/login", data={"username": username, "password": password})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


# --- processes -------------------------------------------------------------------------------------


def uvicorn_argv(factory: str, port: int, *, workers: int = 1) -> list[str]:
    return [
        PYTHON, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid


@dataclass
class Processes:
    """The processes a script started, their logs in `tmp` (`<name>.log`); `stop_all` at the end."""

    prefix: str = "mif-bench-"
    procs: list[Proc] = field(default_factory=list)
    tmp: Path = field(init=False)

    def __post_init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=self.prefix))

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None, *, cwd: Path = REPO) -> Proc:
        log = self.tmp / f"{name}.log"
        popen = subprocess.Popen(  # fixed argv built by the scripts or given explicitly by the operator
            argv, env={**os.environ, **(env or {})}, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=cwd
        )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def uvicorn(
        self, name: str, factory: str, port: int, env: dict[str, str], *, workers: int = 1, cwd: Path = REPO
    ) -> Proc:
        return self.start(name, uvicorn_argv(factory, port, workers=workers), env, cwd=cwd)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=5)

    def close(self, *, failed: bool) -> None:
        """Stop everything; the logs are kept (and their place said) only when the run failed."""
        self.stop_all()
        if failed:
            print(f"process logs kept in {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


async def wait_ready(url: str, proc: Proc, limit: float = 60.0) -> None:
    """Until `url` answers 200; fails at once, with the end of the log, if the process exits."""
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited; see {proc.log}:\n{proc.log.read_text()[-3000:]}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{proc.name} not ready at {url} after {limit:.0f}s; see {proc.log}")


async def serve_jwks(jwks: dict[str, Any]) -> tuple[web.AppRunner, str]:
    """A stand-in for auth, in this process: the JWKS the services and the gateways trust, an empty
    token-state snapshot, and every user asked about active at token version 0."""
    app = web.Application()

    async def keys(_: web.Request) -> web.Response:
        return web.json_response(jwks)

    async def token_states(_: web.Request) -> web.Response:
        return web.json_response([])

    async def token_state(request: web.Request) -> web.Response:  # every bench user exists
        return web.json_response({"user_id": int(request.match_info["user_id"]), "is_active": True, "token_version": 0})

    app.router.add_get("/api/v1/auth/.well-known/jwks.json", keys)
    app.router.add_get("/api/v1/auth/internal/token-states", token_states)
    app.router.add_get("/api/v1/auth/internal/token-states/{user_id}", token_state)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


# --- the previous build, side by side --------------------------------------------------------------


def export_tree(rev: str, target: Path) -> None:
    """`git archive <rev>` unpacked into `target` (read-only for the repository's state)."""
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=REPO, check=True, capture_output=True)
    with tempfile.TemporaryFile() as tmp:
        tmp.write(archive.stdout)
        tmp.seek(0)
        with tarfile.open(fileobj=tmp) as tar:
            tar.extractall(target, filter="data")


def tree_env(tree: Path) -> dict[str, str]:
    """PYTHONPATH putting `tree`'s packages before the editable installs of this repository."""
    packages = [tree / "libs" / "mif-common", tree / "gateway", *sorted((tree / "services").iterdir())]
    return {"PYTHONPATH": os.pathsep.join(str(p) for p in packages if p.is_dir())}


def imported_from(env: dict[str, str], cwd: Path, module: str = "mif_assets.api") -> str:
    """Which files a process started with `env` in `cwd` imports (the build it really runs)."""
    code = f"import mif_common.pagination as p, {module} as m; print('imports', p.__file__, m.__file__)"
    result = subprocess.run(
        [PYTHON, "-c", code], env={**os.environ, **env}, cwd=cwd, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


@dataclass
class Build:
    """One build under measure: its tree, its environment, its service behind its own gateway."""

    name: str
    tree: Path
    env: dict[str, str]
    service: Proc | None = None
    gateway: Proc | None = None
    base: str = ""


async def start_build(
    build: Build,
    procs: Processes,
    *,
    service: str,
    database_url: str,
    jwks_base: str,
    pool_size: int,
    workers: int = 1,
) -> None:
    """`service` of `build` (its tree, `workers` uvicorn workers) and a gateway of the same tree in front of
    it; the stand-in for auth at `jwks_base`, every other service down. Background tasks, revocation and
    rate limits off: only the request path is measured."""
    from mif_common.suite import ALL_SERVICES

    upper = service.upper()
    service_port, gateway_port = free_port(), free_port()
    build.service = procs.uvicorn(
        f"{build.name}-{service}",
        f"mif_{service}.main:create_app",
        service_port,
        {
            **build.env,
            f"MIF_{upper}_DATABASE_URL": database_url,
            f"MIF_{upper}_JWKS_URL": f"{jwks_base}/api/v1/auth/.well-known/jwks.json",
            f"MIF_{upper}_AUTH_URL": jwks_base,  # the token states of the bench's users
            f"MIF_{upper}_BACKGROUND_TASKS": "false",
            # The same pool in both builds (HEAD: 10 + 10 overflow; the working tree's default may differ).
            f"MIF_{upper}_DB_POOL_SIZE": str(pool_size),
            f"MIF_{upper}_DB_MAX_OVERFLOW": str(pool_size),
            f"MIF_{upper}_LOG_LEVEL": "WARNING",
        },
        workers=workers,
        cwd=build.tree,
    )
    dead = f"http://127.0.0.1:{free_port()}"
    upstreams = {s.name: dead for s in ALL_SERVICES}
    upstreams.update({"auth": jwks_base, service: f"http://127.0.0.1:{service_port}"})
    build.gateway = procs.uvicorn(
        f"{build.name}-gateway",
        "mif_gateway.main:create_app",
        gateway_port,
        {
            **build.env,
            "MIF_GATEWAY_UPSTREAMS": json.dumps(upstreams),
            "MIF_GATEWAY_LOG_LEVEL": "WARNING",
            "MIF_GATEWAY_BACKGROUND_TASKS": "false",
            "MIF_GATEWAY_REVOCATION_ENABLED": "false",
            "MIF_GATEWAY_RATE_USER_PER_WINDOW": "100000000",
            "MIF_GATEWAY_RATE_ANONYMOUS_PER_WINDOW": "100000000",
        },
        cwd=build.tree,
    )
    await wait_ready(f"http://127.0.0.1:{service_port}/health/live", build.service)
    build.base = f"http://127.0.0.1:{gateway_port}"
    await wait_ready(f"{build.base}/health/live", build.gateway)


# --- load and measures -----------------------------------------------------------------------------


def spread(total: int, workers: int) -> list[int]:
    """`total` requests shared as evenly as can be between `workers`."""
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


async def load(session: aiohttp.ClientSession, url: str, token: str, concurrency: int, total: int) -> list[float]:
    """`total` authenticated GETs of `url` by `concurrency` sequential workers; the latency of each 200
    (the other answers are counted and the first one printed)."""
    latencies: list[float] = []
    errors: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}

    async def worker(n: int) -> None:
        for _ in range(n):
            start = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                body = await response.read()
                if response.status != 200:
                    errors.append(f"{response.status} {body[:200]!r}")
                    continue
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(worker(n) for n in spread(total, concurrency)))
    if errors:
        print(f"  {len(errors)} errors on {url}, the first: {errors[0]}", file=sys.stderr)
    return latencies


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere, and for no process)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and of its children (uvicorn's workers when there are several)."""
    total = cpu_seconds(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(cpu_seconds(int(child)) for child in children)


async def postgres_cpu(admin_dsn: str, database: str) -> dict[int, float]:
    """CPU so far of each PostgreSQL backend connected to `database` (the pools of the processes measured)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", database
        )
    finally:
        await conn.close()
    return {row["pid"]: cpu_seconds(row["pid"]) for row in rows}


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two `postgres_cpu` readings (backends that came and went included)."""
    return sum(max(0.0, seconds - before.get(pid, 0.0)) for pid, seconds in after.items())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def percentile_ms(seconds: list[float], q: float) -> float:
    return percentile(seconds, q) * 1000

"""Documents streaming: upload and download a 50 MB file through the gateway (and straight to the
service, side by side), with the peak memory of both processes.

    .venv/bin/python bench/documents_stream.py                 # 50 MB, 3 rounds, clear and encrypted storage
    .venv/bin/python bench/documents_stream.py --size-mb 20 --rounds 5 --modes clear

Everything is started here on loopback and free ports: a throwaway database `mif_bench_documents`
(provisioned and migrated), a stand-in for auth's JWKS and for interventions' read-through (a tiny
HTTP server in this process), one documents process per storage mode (uvicorn, one worker; `clear`
and `encrypted` = AES-256-GCM at rest) and one gateway in front of them. Each round uploads the file
(multipart, streamed from disk with a Content-Length) and downloads it again (streamed, SHA-256
checked), straight to the service and through the gateway, in alternating order.

Memory: before each transfer the kernel's peak-RSS mark of the gateway and the service is reset
(`/proc/<pid>/clear_refs` = 5) and their RSS is sampled every 10 ms; after it, the peak (`VmHWM`) is
read. Printed per target: throughput (MB/s, median of the rounds), the processes' RSS before the
transfer, their peak during it and the growth. Target: peak under 64 MB of growth for each process
(a Python process with this stack already holds ~80-100 MB before the first byte moves, so the
absolute RSS is printed too). Bounded loops only; the load generator shares the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from support import PYTHON, REPO, add_admin_dsn, free_port, provision_databases  # bench/support.py, next to this script

MB = 1024 * 1024
TARGET_GROWTH_MB = 64
DATABASE = "mif_bench_documents"
INTERVENTION_ID = 4242
UVICORN_FLAGS = ("--no-access-log", "--lifespan", "on")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Processes:
    tmp: Path
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, factory: str, env: dict[str, str]) -> Proc:
        port = free_port()
        log = self.tmp / f"{name}.log"
        popen = subprocess.Popen(  # fixed argv
            [PYTHON, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1", "--port", str(port), *UVICORN_FLAGS],
            env={**os.environ, **env},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        proc = Proc(name, popen, port, log)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(10)
            if proc.popen.poll() is None:
                proc.popen.kill()


async def wait_live(http: aiohttp.ClientSession, proc: Proc, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited; see {proc.log}:\n{proc.log.read_text()[-3000:]}")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{proc.url}/health/live") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not start; see {proc.log}")


# --- memory -------------------------------------------------------------------------------------------


def _status_kb(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmRSS") / 1024


def reset_peak(pid: int) -> bool:
    """Reset the kernel's peak-RSS mark (Linux 4.0+); False where that is not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mb(pid: int) -> float:
    return _status_kb(pid, "VmHWM") / 1024


class MemoryWatch:
    """RSS of some processes sampled every 10 ms while a transfer runs, plus their kernel peak."""

    def __init__(self, procs: list[Proc]) -> None:
        self.procs = procs
        self.before = {p.name: rss_mb(p.popen.pid) for p in procs}
        self.sampled = dict(self.before)
        self.reset = all(reset_peak(p.popen.pid) for p in procs)
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            for proc in self.procs:
                self.sampled[proc.name] = max(self.sampled[proc.name], rss_mb(proc.popen.pid))
            await asyncio.sleep(0.01)

    def __enter__(self) -> MemoryWatch:
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()

    def peaks(self) -> dict[str, float]:
        """Peak RSS during the transfer: the kernel's mark when it could be reset, else the samples."""
        if self.reset:
            return {p.name: max(peak_mb(p.popen.pid), self.sampled[p.name]) for p in self.procs}
        return dict(self.sampled)


# --- transfers ------------------------------------------------------------------------------------------


def make_file(path: Path, size: int) -> str:
    """A PDF-looking file of `size` random bytes; returns its SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        head = b"%PDF-1.7\n"
        out.write(head)
        digest.update(head)
        remaining = size - len(head)
        while remaining > 0:
            block = os.urandom(min(MB, remaining))
            out.write(block)
            digest.update(block)
            remaining -= len(block)
    return digest.hexdigest()


BOUNDARY = "mifbenchboundary0123456789"


def multipart_parts(filename: str) -> tuple[bytes, bytes]:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    return head, f"\r\n--{BOUNDARY}--\r\n".encode()


async def file_body(path: Path, head: bytes, tail: bytes) -> AsyncIterator[bytes]:
    yield head
    with path.open("rb") as source:
        while block := await asyncio.to_thread(source.read, 256 * 1024):
            yield block
    yield tail


@dataclass
class Measure:
    seconds: float
    before: dict[str, float]
    peaks: dict[str, float]


async def upload(
    http: aiohttp.ClientSession, base: str, token: str, path: Path, size: int, watched: list[Proc]
) -> tuple[Measure, dict[str, Any]]:
    head, tail = multipart_parts(path.name)
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(len(head) + size + len(tail)),
    }
    with MemoryWatch(watched) as watch:
        started = time.perf_counter()
        async with http.post(
            f"{base}/api/v1/documents?intervention_id={INTERVENTION_ID}",
            data=file_body(path, head, tail),
            headers=headers,
        ) as response:
            body = await response.json()
            if response.status != 201:
                raise RuntimeError(f"upload to {base}: {response.status} {body}")
        seconds = time.perf_counter() - started
    return Measure(seconds, watch.before, watch.peaks()), body


async def download(http: aiohttp.ClientSession, base: str, path: str, watched: list[Proc]) -> tuple[Measure, str, int]:
    digest = hashlib.sha256()
    size = 0
    with MemoryWatch(watched) as watch:
        started = time.perf_counter()
        async with http.get(f"{base}{path}") as response:  # no Authorization: the signed URL
            if response.status != 200:
                raise RuntimeError(f"download from {base}: {response.status} {await response.text()}")
            async for chunk in response.content.iter_chunked(256 * 1024):
                digest.update(chunk)
                size += len(chunk)
        seconds = time.perf_counter() - started
    return Measure(seconds, watch.before, watch.peaks()), digest.hexdigest(), size


# --- setup ----------------------------------------------------------------------------------------------


def _memory(row: dict[str, Any], name: str) -> str:
    if name not in row["before"]:
        return "-"
    growth = row["peak"][name] - row["before"][name]
    return f"{row['before'][name]:6.1f} -> {row['peak'][name]:6.1f} (+{growth:5.1f})"


def report(rows: list[dict[str, Any]], size_mb: float) -> bool:
    print(
        f"\nFile: {size_mb:.0f} MB. Throughput: median of the rounds. Memory (MB): RSS before -> peak during (+growth)."
    )
    header = f"{'storage':<10} {'path':<8} {'op':<9} {'MB/s':>7}  {'service':<28} {'gateway':<28}"
    print(header)
    print("-" * len(header))
    ok = True
    for row in rows:
        cells = [_memory(row, name) for name in ("documents", "gateway")]
        print(f"{row['mode']:<10} {row['path']:<8} {row['op']:<9} {row['mbps']:7.1f}  {cells[0]:<28} {cells[1]:<28}")
        for name in ("documents", "gateway"):
            if name in row["before"] and row["peak"][name] - row["before"][name] >= TARGET_GROWTH_MB:
                ok = False
    print(f"\nTarget: growth under {TARGET_GROWTH_MB} MB for the service and the gateway: {'met' if ok else 'MISSED'}.")
    return ok


async def main(args: argparse.Namespace) -> int:
    from mif_common.testing.keys import TestKeys
    from mif_documents.testing import StandIn

    tmp = Path(tempfile.mkdtemp(prefix="mif-bench-docs-"))
    procs = Processes(tmp)
    keys = TestKeys.generate()
    standin = await StandIn(jwks=keys.jwks).start()
    standin.answer(INTERVENTION_ID, statut="en_cours")
    token = keys.token("responsable", user_id=1, ttl=3600)
    size = int(args.size_mb * MB)
    source = tmp / "bench.pdf"
    expected = make_file(source, size)
    try:
        url = (await provision_databases(args.admin_dsn, DATABASE, ["documents"]))["documents"]
        common = {
            "MIF_ENVIRONMENT": "test",
            "MIF_LOG_JSON": "false",
            "MIF_LOG_LEVEL": "WARNING",
            "MIF_BACKGROUND_TASKS": "false",
            "MIF_DOCUMENTS_DATABASE_URL": url,
            "MIF_DOCUMENTS_AUTH_URL": standin.url,
            "MIF_DOCUMENTS_INTERVENTIONS_URL": standin.url,
            "MIF_DOCUMENTS_MAX_UPLOAD_BYTES": str(size + MB),
        }
        services: dict[str, Proc] = {}
        for mode in args.modes:
            env = dict(common, MIF_DOCUMENTS_STORAGE_DIR=str(tmp / f"storage-{mode}"))
            if mode == "encrypted":
                key = base64.b64encode(os.urandom(32)).decode()
                env |= {
                    "MIF_DOCUMENTS_ENCRYPTION_ENABLED": "true",
                    "MIF_DOCUMENTS_ENCRYPTION_KEYS": json.dumps({"bench": key}),
                    "MIF_DOCUMENTS_ENCRYPTION_KEY_ID": "bench",
                }
            services[mode] = procs.start("documents", "mif_documents.main:create_app", env)
        gateways = {
            mode: procs.start(
                "gateway",
                "mif_gateway.main:create_app",
                dict(
                    common,
                    MIF_GATEWAY_UPSTREAMS=json.dumps({"auth": standin.url, "documents": service.url}),
                    MIF_GATEWAY_REVOCATION_ENABLED="false",
                    MIF_GATEWAY_RATE_LIMIT_ENABLED="false",
                ),
            )
            for mode, service in services.items()
        }
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as http:
            for proc in procs.procs:
                await wait_live(http, proc)
            # Warm up: token keys fetched, read-through cached, code paths imported.
            for mode in args.modes:
                small = tmp / "warm.pdf"
                make_file(small, 64 * 1024)
                for base in (services[mode].url, gateways[mode].url):
                    _, body = await upload(http, base, token, small, small.stat().st_size, [])
                    await download(http, base, body["path"], [])

            rows: list[dict[str, Any]] = []
            for mode in args.modes:
                results: dict[tuple[str, str], list[Measure]] = {}
                targets = [
                    ("direct", services[mode].url, [services[mode]]),
                    ("gateway", gateways[mode].url, [services[mode], gateways[mode]]),
                ]
                for round_ in range(args.rounds):
                    order = targets if round_ % 2 == 0 else list(reversed(targets))
                    for name, base, watched in order:
                        up, body = await upload(http, base, token, source, size, watched)
                        if body["sha256"] != expected:
                            raise RuntimeError("the service stored other bytes")
                        down, digest, received = await download(http, base, body["path"], watched)
                        if digest != expected or received != size:
                            raise RuntimeError(f"downloaded bytes differ ({received} of {size})")
                        results.setdefault((name, "upload"), []).append(up)
                        results.setdefault((name, "download"), []).append(down)
                for (name, op), measures in results.items():
                    rows.append(
                        {
                            "mode": mode,
                            "path": name,
                            "op": op,
                            "mbps": statistics.median(size / MB / m.seconds for m in measures),
                            "before": {k: statistics.median(m.before[k] for m in measures) for k in measures[0].before},
                            "peak": {k: max(m.peaks[k] for m in measures) for k in measures[0].peaks},
                        }
                    )
        ok = report(rows, args.size_mb)
        if args.json:
            await asyncio.to_thread(Path(args.json).write_text, json.dumps(rows, indent=2))
        return 0 if ok else 1
    finally:
        procs.stop_all()
        await standin.stop()
        with contextlib.suppress(OSError):
            source.unlink()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", type=lambda s: s.split(","), default=["clear", "encrypted"])
    parser.add_argument("--json", help="also write the figures to this file")
    add_admin_dsn(parser)
    return parser.parse_args()


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(asyncio.run(main(parse_args())))

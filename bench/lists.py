"""List endpoints before and after, side by side: `GET /api/v1/equipements/` through the gateway.

    .venv/bin/python bench/lists.py --before-rev <commit>       # the tree of <commit> against this one
    .venv/bin/python bench/lists.py --equipements 100000 --explain-only   # the search plans on a big table

Seeds a throwaway database `mif_bench_lists` with SQL (generate_series): `--clients` client organisations
and `--equipements` equipment (assets' own migrations), then `VACUUM ANALYZE`. Two builds run side by
side on loopback, free ports, one uvicorn worker each: the tree of `--before-rev` (exported with
`git archive` into `--before`, a directory outside the repository; git's state is not touched) and this
working tree, each as its own assets service behind its own gateway (the old tree's packages come first on
its PYTHONPATH, and the script checks which files each process imports). Tokens are signed by an Ed25519
key the script serves as the JWKS (no auth service needed).

First the answers are compared: the same requests (filters, sorts, searches, paging past the end, a
client user's scope) must get byte-identical bodies and the same `X-Total-Count` and `Link` from both
builds (exit status 1 otherwise). Then `--paths` (default: the 50-row equipment list) are measured at
concurrency 1 and `--concurrency` in alternating rounds (before, after, after, before, ...) so that drift
on the machine hits both alike: p50/p95/p99, requests per second, and the CPU spent per request by each
process (service, gateway, the PostgreSQL backends of the database, this load generator) from /proc.
Last, the EXPLAIN ANALYZE of the searches (`q`) as each build plans them. Bounded loops only; the load
generator shares the machine (2 cores here), so read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
from support import (  # bench/support.py, next to this script
    REPO,
    Build,
    Processes,
    add_admin_dsn,
    cpu_seconds,
    cpu_spent,
    database_dsn,
    export_tree,
    imported_from,
    load,
    percentile_ms,
    postgres_cpu,
    provision_databases,
    serve_jwks,
    start_build,
    tree_env,
)

DATABASE = "mif_bench_lists"
LIST = "/api/v1/equipements/?limit=50"
# The monolith's figures for the same list (issue 14): requests per second at c=1 and c=10.
MONOLITH = {1: 240.0, 10: 215.0}

TYPES = ["compresseur", "pompe", "chaudière", "convoyeur", "groupe froid", "armoire électrique", "ventilateur"]
MARQUES = ["Atlas Copco", "Grundfos", "Viessmann", "Siemens", "Schneider", "Daikin", "ABB", "Kaeser"]
VILLES = ["Casablanca", "Rabat", "Tanger", "Fès", "Marrakech", "Agadir", "Kénitra", "Oujda"]

# Requests both builds must answer alike (as a manager unless marked `client:`).
COMPARED = [
    "/api/v1/equipements/?limit=50",
    "/api/v1/equipements",
    "/api/v1/equipements/?limit=20&offset=40&sort=-date_creation",
    "/api/v1/equipements/?sort=nom,-id&limit=30",
    "/api/v1/equipements/?sort=criticite,-date_mise_en_service&limit=100",
    "/api/v1/equipements/?statut=panne&statut=maintenance&limit=50",
    "/api/v1/equipements/?criticite=critique&type=Compresseur&limit=50",
    "/api/v1/equipements/?localisation=atelier%203&limit=50",
    "/api/v1/equipements/?q=grundfos&limit=50",
    "/api/v1/equipements/?q=X-2026&limit=50",
    "/api/v1/equipements/?q=X-2026&sort=-nom&limit=10&offset=5",
    "/api/v1/equipements/?q=SN-0001&sort=date_fin_garantie",
    "/api/v1/equipements/?q=100%25_&limit=50",
    "/api/v1/equipements/?q=zzzz-nothing",
    "/api/v1/equipements/?q=pompe&offset=100000",
    "/api/v1/equipements/?offset=100000",
    "/api/v1/equipements/?client_id=7&sort=-frequence_entretien",
    "/api/v1/clients/?limit=50",
    "/api/v1/clients/?q=casa&sort=-nom_entreprise",
    "/api/v1/clients/?niveau_service=premium&type_client=entreprise&is_active=true",
    "/api/v1/clients/?ville=RABAT&sort=contrat_fin",
    "client:/api/v1/equipements/?limit=50",
    "client:/api/v1/equipements/?q=pompe&client_id=8",
    "client:/api/v1/clients/",
]


# --- database -------------------------------------------------------------------------------------------


async def seed(admin_dsn: str, clients: int, equipements: int) -> str:
    """Provision and migrate the bench database, then fill it; returns the service's database URL."""
    url = (await provision_databases(admin_dsn, DATABASE, ["assets"]))["assets"]

    def array(values: list[str]) -> str:
        return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"

    conn = await asyncpg.connect(database_dsn(admin_dsn, DATABASE))
    try:
        await conn.execute("SET search_path TO assets")
        started = time.perf_counter()
        await conn.execute(
            f"""
            INSERT INTO client (nom_entreprise, type_client, secteur_activite, nom_contact, email, telephone, adresse,
                ville, niveau_service, is_active, contrat_debut, contrat_fin, type_contrat, date_creation,
                date_modification)
            SELECT 'Société ' || g || CASE WHEN g % 9 = 0 THEN ' Casablanca' ELSE '' END,
                (ARRAY['entreprise', 'collectivite', 'association', 'particulier'])[1 + g % 4],
                CASE WHEN g % 3 = 0 THEN NULL ELSE 'Industrie' END, 'Contact ' || g,
                CASE WHEN g % 4 = 0 THEN NULL ELSE 'contact' || g || '@exemple.ma' END,
                CASE WHEN g % 5 = 0 THEN NULL ELSE '+212 5 22 00 ' || lpad((g % 100)::text, 2, '0') END,
                CASE WHEN g % 2 = 0 THEN NULL ELSE g || ' boulevard Zerktouni' END,
                ({array(VILLES)})[1 + g % {len(VILLES)}],
                (ARRAY['premium', 'standard', 'basique'])[1 + g % 3], g % 17 <> 0,
                CASE WHEN g % 2 = 0 THEN date '2024-01-01' + g % 300 END,
                CASE WHEN g % 2 = 0 THEN date '2026-01-01' + g % 300 END,
                CASE WHEN g % 2 = 0 THEN 'Maintenance ' || g % 3 END,
                now() - g * interval '7 hours 13 minutes 1.000321 seconds', now() - g * interval '3 hours'
            FROM generate_series(1, {int(clients)}) g
            """
        )
        # The newest 1 % carry the model `X-2026`: a search whose matches all sit at the end of the default
        # sort (`id` ascending), the correlation that sends a LIMIT-driven plan through the whole table.
        newest = int(equipements) - max(1, int(equipements) // 100)
        await conn.execute(
            f"""
            INSERT INTO equipement (nom, type, localisation, numero_serie, marque, modele, statut, criticite,
                client_id, frequence_entretien, date_mise_en_service, date_fin_garantie, date_creation,
                date_modification)
            SELECT 'Équipement ' || g,
                initcap(({array(TYPES)})[1 + g % {len(TYPES)}]),
                'Atelier ' || g % 12,
                CASE WHEN g % 4 = 0 THEN NULL ELSE 'SN-' || lpad(g::text, 7, '0') END,
                CASE WHEN g % 6 = 0 THEN NULL ELSE ({array(MARQUES)})[1 + g % {len(MARQUES)}] END,
                CASE WHEN g > {newest} THEN 'X-2026' WHEN g % 5 = 0 THEN NULL ELSE 'M' || g % 40 END,
                CASE WHEN g % 10 < 7 THEN 'operationnel' WHEN g % 10 < 9 THEN 'maintenance'
                     WHEN g % 20 = 9 THEN 'panne' ELSE 'retire' END,
                (ARRAY['critique', 'important', 'standard', 'non_critique'])[1 + g % 4],
                CASE WHEN g % 11 = 0 THEN NULL ELSE 1 + g % {int(clients)} END,
                CASE WHEN g % 3 = 0 THEN NULL ELSE 30 + g % 335 END,
                date '2015-01-01' + g % 3000,
                CASE WHEN g % 4 = 0 THEN NULL ELSE date '2024-01-01' + g % 3000 END,
                now() - ({int(equipements)} - g) * interval '11 minutes 0.000017 seconds',
                now() - (g % 1000) * interval '1 minute'
            FROM generate_series(1, {int(equipements)}) g
            """
        )
        for table in ("client", "equipement"):
            await conn.execute(f"VACUUM ANALYZE {table}")
        print(
            f"seeded {clients} clients and {equipements} equipment in {time.perf_counter() - started:.1f}s",
            flush=True,
        )
    finally:
        await conn.close()
    return url


SEARCHES = [
    ("q=X-2026 (1 %, the newest)", {"q": "X-2026"}, None),
    ("q=X-2026 sort=nom", {"q": "X-2026"}, "nom"),
    ("q=SN-00012 (selective)", {"q": "SN-00012"}, None),
    ("q=grundfos (broad)", {"q": "grundfos"}, None),
    ("q=compresseur sort=-date_creation (broad)", {"q": "compresseur"}, "-date_creation"),
]


async def explain(admin_dsn: str) -> None:
    """EXPLAIN ANALYZE of the equipment searches: the statement this tree runs (the matches first, in a
    MATERIALIZED CTE) and the one-query plan the previous build ran (the same WHERE, ORDER BY, LIMIT)."""
    from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg

    from mif_assets import repository as repo
    from mif_assets.api import _EQUIPEMENT_SORT, _EQUIPEMENTS
    from mif_common.listing import plain_page
    from mif_common.pagination import order_by
    from mif_common.statements import CompiledSql

    dialect = pg_asyncpg.dialect()  # type: ignore[no-untyped-call]
    conn = await asyncpg.connect(database_dsn(admin_dsn, DATABASE))
    try:
        await conn.execute("SET search_path TO assets")
        for name, filters, sort in SEARCHES:
            terms = repo.equipements_terms(
                only_client_id=None, statut=[], criticite=[], client_id=None, type_=None, localisation=None, **filters
            )
            shape = tuple(t for t in _EQUIPEMENTS.terms if t in terms)
            new = _EQUIPEMENTS.statements(shape, sort, dialect).page
            clauses = [_EQUIPEMENTS.terms[t]() for t in shape]
            old_page = plain_page(
                _EQUIPEMENTS.columns,
                _EQUIPEMENTS.source,
                clauses,
                order_by(sort, _EQUIPEMENT_SORT, default=_EQUIPEMENTS.default),
            )
            old = CompiledSql.of(old_page, dialect, _EQUIPEMENTS.terms.keys() | {"limit", "offset"})
            values = {**terms, "limit": 50, "offset": 0}
            for label, sql in (("one query (before)", old), ("matches first (after)", new)):
                await conn.fetch(sql.text, *sql.args(values))  # warm
                plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql.text}", *sql.args(values))
                print(f"\n--- {name}: {label} ---")
                for line in plan:
                    print("  " + line[0])
    finally:
        await conn.close()


async def compare(session: aiohttp.ClientSession, builds: list[Build], tokens: dict[str, str]) -> int:
    """The same requests to every build: bodies byte for byte, and the paging headers."""
    differences = 0
    for entry in COMPARED:
        who, path = entry.split(":", 1) if entry.startswith("client:") else ("manager", entry)
        answers = []
        for build in builds:
            async with session.get(build.base + path, headers={"Authorization": f"Bearer {tokens[who]}"}) as r:
                answers.append(
                    (r.status, await r.read(), r.headers.get("X-Total-Count"), r.headers.get("Link"), r.content_type)
                )
        first = answers[0]
        same = all(answer == first for answer in answers[1:])
        differences += not same
        print(
            f"  {'same' if same else 'DIFFERENT':<9} {who:<7} {path:<75} {first[0]} total={first[2]} "
            f"{len(first[1])} bytes"
        )
        if not same:
            for build, answer in zip(builds, answers, strict=True):
                print(f"      {build.name}: {answer[0]} total={answer[2]} link={answer[3]!r} {answer[1][:300]!r}")
    return differences


async def main(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from mif_common.testing.keys import TestKeys

    url = await seed(args.admin_dsn, args.clients, args.equipements)
    if args.explain_only:
        await explain(args.admin_dsn)
        return 0
    builds: list[Build] = []
    if not args.skip_before:
        before = Path(args.before)
        builds.append(Build("before", before, tree_env(before)))
    builds.append(Build("after", REPO, {}))
    for build in builds:
        print(f"{build.name}: {imported_from(build.env, build.tree)}", flush=True)

    keys = TestKeys(Ed25519PrivateKey.generate(), kid=f"bench-{uuid.uuid4().hex[:8]}")
    tokens = {
        "manager": keys.token("responsable", user_id=1, ttl=7200),
        "client": keys.token("client", user_id=2, client_id=8, ttl=7200),
    }
    runner, jwks_base = await serve_jwks(keys.jwks)
    procs = Processes("mif-bench-lists-")
    failed = 0
    try:
        for build in builds:
            await start_build(
                build, procs, service="assets", database_url=url, jwks_base=jwks_base, pool_size=args.db_pool_size
            )
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            print("\nanswers compared between the builds:")
            failed = await compare(session, builds, tokens)
            paths = args.paths.split(",")
            targets = [(build, path) for path in paths for build in builds]
            for build, path in targets:  # warm-up
                await load(session, build.base + path, tokens["manager"], args.concurrency, 300)
            results: list[tuple[str, str, int, list[float], float, dict[str, float]]] = []
            for concurrency in (1, args.concurrency):
                samples: dict[tuple[str, str], list[float]] = {(b.name, p): [] for b, p in targets}
                elapsed = dict.fromkeys(samples, 0.0)
                cpu = {key: dict.fromkeys(("svc", "gw", "pg", "load"), 0.0) for key in samples}
                count = args.requests // args.rounds // (3 if concurrency == 1 else 1)
                for round_no in range(args.rounds):
                    order = targets if round_no % 2 == 0 else targets[::-1]
                    for build, path in order:
                        assert build.service is not None
                        assert build.gateway is not None
                        key = (build.name, path)
                        pg0 = await postgres_cpu(args.admin_dsn, DATABASE)
                        svc0, gw0 = cpu_seconds(build.service.pid), cpu_seconds(build.gateway.pid)
                        load0 = time.process_time()
                        started = time.perf_counter()
                        samples[key] += await load(session, build.base + path, tokens["manager"], concurrency, count)
                        elapsed[key] += time.perf_counter() - started
                        cpu[key]["load"] += time.process_time() - load0
                        cpu[key]["svc"] += cpu_seconds(build.service.pid) - svc0
                        cpu[key]["gw"] += cpu_seconds(build.gateway.pid) - gw0
                        cpu[key]["pg"] += cpu_spent(pg0, await postgres_cpu(args.admin_dsn, DATABASE))
                results += [(b, p, concurrency, samples[(b, p)], elapsed[(b, p)], cpu[(b, p)]) for b, p in samples]
        load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"\nthrough each build's gateway, one uvicorn worker per process; {args.equipements} equipment; "
            f"load average {load_avg}\nCPU ms per request: service, gateway, PostgreSQL backends, load generator "
            "(this process), and their sum\n"
        )
        header = f"{'build':<7} {'path':<34} {'c':>3} {'n':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'req/s':>6}"
        print(f"{header} {'svc':>6} {'gw':>6} {'pg':>6} {'load':>6} {'total':>6}")
        rates: dict[tuple[str, str, int], float] = {}
        report = []
        for name, path, concurrency, values, seconds, spent in results:
            per = {key: s / len(values) * 1000 for key, s in spent.items()}
            rate = len(values) / seconds
            rates[(name, path, concurrency)] = rate
            p50, p95, p99 = (percentile_ms(values, q) for q in (0.5, 0.95, 0.99))
            report.append(
                {
                    "build": name, "path": path, "c": concurrency, "n": len(values), "p50": p50, "p95": p95,
                    "p99": p99, "rps": rate, "cpu_ms": per,
                }
            )  # fmt: skip
            print(
                f"{name:<7} {path:<34} {concurrency:>3} {len(values):>6} {p50:>7.1f} {p95:>7.1f} {p99:>7.1f} "
                f"{rate:>6.0f} {per['svc']:>6.2f} {per['gw']:>6.2f} {per['pg']:>6.2f} {per['load']:>6.2f} "
                f"{sum(per.values()):>6.2f}"
            )
        print()
        for path in paths:
            for concurrency in (1, args.concurrency):
                after = rates[("after", path, concurrency)]
                line = f"{path} c={concurrency}: after {after:.0f} req/s"
                if ("before", path, concurrency) in rates:
                    line += f", {after / rates[('before', path, concurrency)]:.2f}x before"
                if path == LIST and concurrency in MONOLITH:
                    line += f", {after / MONOLITH[concurrency]:.2f}x the monolith's {MONOLITH[concurrency]:.0f}"
                print(line)
        if args.json:
            text = json.dumps({"load_average": os.getloadavg(), "results": report}, indent=2)
            await asyncio.to_thread(Path(args.json).write_text, text)
    finally:
        procs.stop_all()
        await runner.cleanup()
    await explain(args.admin_dsn)
    if failed:
        print(f"\n{failed} request(s) answered differently by the builds", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--equipements", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=6000, help="per build and path at c>1 (a third at c=1)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--paths", default=LIST, help="comma-separated paths to measure")
    parser.add_argument("--before", default="/tmp/mif-before", help="where the previous build's tree is")
    parser.add_argument("--before-rev", default="HEAD", help="the commit to export there when it does not exist")
    parser.add_argument("--skip-before", action="store_true", help="measure this tree only")
    parser.add_argument("--explain-only", action="store_true", help="seed, print the search plans, stop")
    parser.add_argument("--db-pool-size", type=int, default=10, help="the service's pool (and as many overflow)")
    parser.add_argument("--json", help="write the figures to this file")
    add_admin_dsn(parser)
    arguments = parser.parse_args()
    if not arguments.skip_before and not arguments.explain_only and not Path(arguments.before).exists():
        print(f"exporting {arguments.before_rev} into {arguments.before} (git archive)", flush=True)
        export_tree(arguments.before_rev, Path(arguments.before))
    raise SystemExit(asyncio.run(main(arguments)))

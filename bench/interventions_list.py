"""Interventions list and search latency through the gateway, on 100,000 interventions.

    .venv/bin/python bench/interventions_list.py [--rows 100000] [--requests 3000] [--concurrency 10] [--workers 1]
    .venv/bin/python bench/interventions_list.py --before-rev <commit>   # that build and this tree, side by side
    .venv/bin/python bench/interventions_list.py --explain-only          # seed, print the plans, stop

Seeds a throwaway database `mif_bench_interventions` directly with SQL (generate_series): 2,000
equipment and 50 technicians in the replicas, `--rows` interventions spread over a year. Starts the
interventions service (`--workers` uvicorn workers) and the gateway (one worker), on loopback, free
ports; tokens are signed with an Ed25519 key that this script serves as the JWKS (no auth service
needed). Then, at concurrency
`--concurrency`, alternating in rounds so that drift on the machine hits both alike:

- filtered list:   GET /api/v1/interventions/?statut=en_cours&priorite=haute&sort=-date_creation&limit=50
- search:          GET /api/v1/interventions/?q=EQ1234&limit=50    (an asset reference: ~60 matches, selective)
- correlated `q`:  GET /api/v1/interventions/?q=12&limit=50        (1.1 % of the rows, all among the oldest 13 %:
                   "ligne 12" only in old rows; the newest-first page must not walk the table to find them)
- broad search:    GET /api/v1/interventions/?q=vibration&limit=50 (a common word: ~16 % of the rows)

It prints p50/p95/p99 and throughput of each (targets: p95 <= 25 ms for the list, <= 50 ms for a search), the
CPU each process spent per request (service, gateway, the PostgreSQL backends of the database, this load
generator: from /proc, the figure least disturbed by other load on the machine) and the EXPLAIN ANALYZE plans
of the SQL the service runs for them (page and total in one statement), to show the indexes at work.

With `--before-rev`, the tree of that commit (exported with `git archive` into `--before`, outside the
repository) runs too, its own service behind its own gateway (its packages first on its PYTHONPATH): the
same requests must get the same bodies and totals from both builds, then both are measured in alternating
rounds. Bounded loops only; the load generator shares the machine.
"""

from __future__ import annotations

import argparse
import asyncio
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
    tree_cpu_seconds,
    tree_env,
)

DATABASE = "mif_bench_interventions"
FILTERED = "/api/v1/interventions/?statut=en_cours&priorite=haute&sort=-date_creation&limit=50"
# A broad word (in ~16 % of the rows: the worst case) and an asset reference (~50 rows: the usual search).
SEARCH_WORD = "vibration"
SEARCH = f"/api/v1/interventions/?q={SEARCH_WORD}&limit=50"
SEARCH_REF = "EQ1234"
SEARCH_SELECTIVE = f"/api/v1/interventions/?q={SEARCH_REF}&limit=50"
# In 1.1 % of the rows, all of them old (the seed's "ligne 12"): matches at the far end of the default order.
SEARCH_OLD = "12"
SEARCH_CORRELATED = f"/api/v1/interventions/?q={SEARCH_OLD}&limit=50"
# Compared between the builds (`--before-rev`): bodies and totals must be the same.
COMPARED = [
    FILTERED,
    SEARCH,
    SEARCH_SELECTIVE,
    SEARCH_CORRELATED,
    "/api/v1/interventions/?q=12&sort=-date_creation&limit=50",
    "/api/v1/interventions/?q=12&sort=priorite,titre&limit=20&offset=40",
    "/api/v1/interventions/?q=12&statut=cloturee&limit=50",
    "/api/v1/interventions/?q=vibration%20fuite&sort=-date_limite&limit=50&offset=100",
    "/api/v1/interventions/?q=EQ12&sort=titre&limit=100",
    "/api/v1/interventions/?q=turbine&limit=50",
    "/api/v1/interventions/?q=12&limit=50&offset=5000",
    "/api/v1/interventions/?q=constat&sort=-urgence,date_creation&limit=50",
    "/api/v1/interventions/?q=12&technicien_id=7&limit=50",
]

# Titles and descriptions are drawn from these words (French, as the users write them).
WORDS = [
    "fuite", "huile", "compresseur", "pompe", "vibration", "surchauffe", "courroie", "filtre", "moteur",
    "roulement", "vanne", "capteur", "pression", "chaudière", "brûleur", "ventilateur", "armoire", "disjoncteur",
    "convoyeur", "palier", "joint", "tuyauterie", "climatisation", "groupe", "froid", "électrique", "bruit",
    "alarme", "niveau", "température",
]  # fmt: skip


# --- database ----------------------------------------------------------------------------------------


async def seed(admin_dsn: str, rows: int) -> str:
    """Provision and migrate the bench database, then fill it; returns the service's database URL."""
    url = (await provision_databases(admin_dsn, DATABASE, ["interventions"]))["interventions"]
    words = "ARRAY[" + ", ".join(f"'{w}'" for w in WORDS) + "]"
    conn = await asyncpg.connect(database_dsn(admin_dsn, DATABASE))
    try:
        await conn.execute("SET search_path TO interventions")
        started = time.perf_counter()
        await conn.execute(
            "INSERT INTO equipement_ref (id, nom, client_id, statut, version, updated_at)"
            " SELECT g, 'Équipement ' || g, 1 + g % 200, 'operationnel', 1, now() FROM generate_series(1, 2000) g"
        )
        await conn.execute(
            "INSERT INTO technicien_ref (technicien_id, user_id, full_name, is_active, version)"
            " SELECT g, 10000 + g, 'Technicien ' || g, true, 1 FROM generate_series(1, 50) g"
        )
        # Statuts weighted as in a running shop: most work is finished.
        await conn.execute(
            f"""
            WITH w AS (SELECT {words} AS words),
            r AS (
                SELECT g, random() AS s, random() AS p, random() AS t,
                       now() - (random() * interval '365 days') AS created,
                       1 + (random() * 1999)::int AS eq, 1 + (random() * 49)::int AS tech
                FROM generate_series(1, {int(rows)}) g
            )
            INSERT INTO intervention (titre, description, type, statut, priorite, urgence, equipement_id, client_id,
                technicien_id, date_creation, date_modification, date_limite, date_limite_sla, created_by, version,
                date_cloture, date_debut_travaux, late_notified_at)
            SELECT
                initcap(w.words[1 + (g * 7) % 30]) || ' ' || w.words[1 + (g * 13) % 30]
                    || ' ' || w.words[1 + (g * 3) % 29] || ' - EQ' || r.eq,
                'Constat : ' || w.words[1 + (g * 11) % 30] || ' et ' || w.words[1 + (g * 17) % 30]
                    || ', ligne ' || CASE WHEN g <= {int(rows) * 13 // 100} AND g % 12 = 0 THEN 12 ELSE g % 12 END,
                (ARRAY['corrective', 'preventive', 'ameliorative', 'diagnostic'])[1 + floor(r.t * 4)::int],
                st.statut,
                CASE WHEN r.p < 0.1 THEN 'urgente' WHEN r.p < 0.3 THEN 'haute' WHEN r.p < 0.75 THEN 'normale'
                     WHEN r.p < 0.95 THEN 'basse' ELSE 'programmee' END,
                r.p < 0.1,
                r.eq, 1 + r.eq % 200,
                CASE WHEN st.statut = 'ouverte' THEN NULL ELSE r.tech END,
                r.created, r.created,
                CASE WHEN r.p < 0.95 THEN r.created + interval '72 hours' END, true, 1, 1,
                CASE WHEN st.statut IN ('cloturee', 'archivee') THEN r.created + interval '30 hours' END,
                CASE WHEN st.statut IN ('en_cours', 'en_attente', 'cloturee', 'archivee')
                     THEN r.created + interval '26 hours' END,
                CASE WHEN st.statut IN ('ouverte', 'affectee', 'en_cours', 'en_attente') THEN now() END
            FROM r CROSS JOIN w
            CROSS JOIN LATERAL (SELECT CASE
                WHEN r.s < 0.06 THEN 'ouverte' WHEN r.s < 0.12 THEN 'affectee' WHEN r.s < 0.20 THEN 'en_cours'
                WHEN r.s < 0.25 THEN 'en_attente' WHEN r.s < 0.70 THEN 'cloturee' WHEN r.s < 0.75 THEN 'annulee'
                ELSE 'archivee' END AS statut) st
            """
        )
        await conn.execute("VACUUM ANALYZE intervention")
        await conn.execute("VACUUM ANALYZE equipement_ref")
        await conn.execute("VACUUM ANALYZE technicien_ref")
        total = await conn.fetchval("SELECT count(*) FROM intervention")
        print(f"seeded {total} interventions, 2000 equipment, 50 technicians in {time.perf_counter() - started:.1f}s")
    finally:
        await conn.close()
    return url


EXPLAINED = [
    ("filtered list", {"statut": ["en_cours"], "priorite": ["haute"]}, "-date_creation"),
    (f"search {SEARCH_REF}", {"q": SEARCH_REF}, None),
    (f"correlated q={SEARCH_OLD}", {"q": SEARCH_OLD}, None),
    (f"correlated q={SEARCH_OLD} sort=-date_creation", {"q": SEARCH_OLD}, "-date_creation"),
    (f"correlated q={SEARCH_OLD} statut=cloturee", {"q": SEARCH_OLD, "statut": ["cloturee"]}, None),
    (f"broad search {SEARCH_WORD}", {"q": SEARCH_WORD}, None),
    (f"broad search {SEARCH_WORD} sort=priorite", {"q": SEARCH_WORD}, "priorite"),
]


async def explain(admin_dsn: str) -> None:
    """EXPLAIN ANALYZE of the statement the service runs for each request: the same SQL text and
    parameters, built by its own code (`repository.list_sql`). For a search, also the one-query statement
    the previous build ran (the same WHERE, ORDER BY and LIMIT, without the matches found first)."""
    from datetime import UTC, datetime

    from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg

    from mif_common.listing import plain_page
    from mif_common.pagination import order_by
    from mif_common.statements import CompiledSql
    from mif_interventions import repository as repo
    from mif_interventions.interventions_api import _SORT
    from mif_interventions.models import Intervention

    dialect = pg_asyncpg.dialect()  # type: ignore[no-untyped-call]
    conn = await asyncpg.connect(database_dsn(admin_dsn, DATABASE))
    try:
        await conn.execute("SET search_path TO interventions")
        for name, fields, sort in EXPLAINED:
            filtres = repo.Filtres(now=datetime.now(UTC), **fields)  # type: ignore[arg-type]
            terms, values = repo.list_terms(filtres, repo.Visibilite())  # a manager
            order = order_by(sort, _SORT, default=[Intervention.id.desc()])
            statements = [("as the service runs it", repo.list_sql(terms, sort, lambda o=order: o, dialect).page)]
            if "q" in terms:
                plain = plain_page(repo.LIST_COLUMNS, Intervention, repo.term_clauses(terms), order)
                statements.insert(0, ("one query (before)", CompiledSql.of(plain, dialect, repo._PARAMETERS)))
            args = {**values, "limit": 50, "offset": 0}
            for label, sql in statements:
                await conn.fetch(sql.text, *sql.args(args))  # warm
                plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql.text}", *sql.args(args))
                print(f"\n--- {name}: page and total, {label} ---")
                for line in plan:
                    print("  " + line[0])
    finally:
        await conn.close()


async def compare(session: aiohttp.ClientSession, builds: list[Build], token: str) -> int:
    """The same requests to every build: the same status, body (as JSON: `en_retard` depends on the moment)
    and paging headers."""
    differences = 0
    headers = {"Authorization": f"Bearer {token}"}
    for path in COMPARED:
        answers = []
        for build in builds:
            async with session.get(build.base + path, headers=headers) as r:
                answers.append((r.status, await r.json(), r.headers.get("X-Total-Count"), r.headers.get("Link")))
        same = all(answer == answers[0] for answer in answers[1:])
        differences += not same
        print(f"  {'same' if same else 'DIFFERENT':<9} {path:<88} total={answers[0][2]} rows={len(answers[0][1])}")
    return differences


async def main(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from mif_common.testing.keys import TestKeys

    url = await seed(args.admin_dsn, args.rows)
    if args.explain_only:
        await explain(args.admin_dsn)
        return 0
    builds = [Build("before", Path(args.before), tree_env(Path(args.before)))] if args.before_rev else []
    builds.append(Build("after", REPO, {}))
    for build in builds:
        print(f"{build.name}: {imported_from(build.env, build.tree, 'mif_interventions.repository')}", flush=True)
    keys = TestKeys(Ed25519PrivateKey.generate(), kid=f"bench-{uuid.uuid4().hex[:8]}")
    token = keys.token("responsable", user_id=1, ttl=7200)
    runner, jwks_base = await serve_jwks(keys.jwks)
    procs = Processes("mif-bench-intv-")
    failed = 0
    try:
        for build in builds:
            await start_build(
                build,
                procs,
                service="interventions",
                database_url=url,
                jwks_base=jwks_base,
                pool_size=args.db_pool_size,
                workers=args.workers,
            )
        paths = {
            "filtered list": FILTERED,
            "search q": SEARCH_SELECTIVE,
            "correlated q": SEARCH_CORRELATED,
            "broad search q": SEARCH,
        }
        targets = [(build, name, path) for name, path in paths.items() for build in builds]
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            base = builds[-1].base
            for label, path in paths.items():
                async with session.get(base + path, headers={"Authorization": f"Bearer {token}"}) as first:
                    body = await first.json()
                    if first.status != 200:
                        raise RuntimeError(f"first request failed: {first.status} {body}")
                    print(f"{label}: X-Total-Count {first.headers['X-Total-Count']}, {len(body)} rows per page")
            if len(builds) > 1:
                print("\nanswers compared between the builds:")
                failed = await compare(session, builds, token)
            for build, _, path in targets:  # warm-up
                await load(session, build.base + path, token, args.concurrency, 200)
            rounds = args.rounds
            results: list[tuple[str, str, int, list[float], float, dict[str, float]]] = []
            for concurrency in (1, args.concurrency):
                keys_ = [(b.name, n) for b, n, _ in targets]
                samples: dict[tuple[str, str], list[float]] = {k: [] for k in keys_}
                elapsed = dict.fromkeys(keys_, 0.0)
                # CPU seconds per process: service, gateway, PostgreSQL backends, this load generator.
                cpu = {k: dict.fromkeys(("svc", "gw", "pg", "load"), 0.0) for k in keys_}
                for round_no in range(rounds):
                    order = targets if round_no % 2 == 0 else targets[::-1]
                    for build, name, path in order:
                        assert build.service is not None
                        assert build.gateway is not None
                        key = (build.name, name)
                        count = args.requests // rounds // (5 if concurrency == 1 else 1)
                        pg0 = await postgres_cpu(args.admin_dsn, DATABASE)
                        svc0, gw0 = tree_cpu_seconds(build.service.pid), cpu_seconds(build.gateway.pid)
                        load0 = time.process_time()
                        started = time.perf_counter()
                        samples[key] += await load(session, build.base + path, token, concurrency, count)
                        elapsed[key] += time.perf_counter() - started
                        cpu[key]["load"] += time.process_time() - load0
                        cpu[key]["svc"] += tree_cpu_seconds(build.service.pid) - svc0
                        cpu[key]["gw"] += cpu_seconds(build.gateway.pid) - gw0
                        cpu[key]["pg"] += cpu_spent(pg0, await postgres_cpu(args.admin_dsn, DATABASE))
                results += [(b, n, concurrency, samples[(b, n)], elapsed[(b, n)], cpu[(b, n)]) for b, n in keys_]
        load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"\nthrough the gateway, {args.workers} uvicorn worker(s) for the service, 1 for the gateway; "
            f"load average {load_avg}\nCPU ms per request: service, gateway, PostgreSQL backends, load generator"
            " (this process), and their sum\n"
        )
        header = (
            f"{'build':<7} {'request':<15} {'c':>3} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>7}"
        )
        print(f"{header} {'svc':>6} {'gw':>6} {'pg':>6} {'load':>6} {'total':>6} {'target p95':>11}")
        for build_name, name, concurrency, values, seconds, spent in results:
            target = 25 if name == "filtered list" else 50
            p50, p95, p99 = (percentile_ms(values, q) for q in (0.5, 0.95, 0.99))
            verdict = ""
            if concurrency == args.concurrency:
                verdict = f"<= {target} " + ("ok" if p95 <= target else "MISSED")
            per = {key: seconds_ / len(values) * 1000 for key, seconds_ in spent.items()}
            print(
                f"{build_name:<7} {name:<15} {concurrency:>3} {len(values):>6} {p50:>8.1f} "
                f"{p95:>8.1f} {p99:>8.1f} {len(values) / seconds:>7.0f} "
                f"{per['svc']:>6.2f} {per['gw']:>6.2f} {per['pg']:>6.2f} {per['load']:>6.2f} "
                f"{sum(per.values()):>6.2f} {verdict:>11}"
            )
    finally:
        procs.stop_all()
        await runner.cleanup()
    await explain(args.admin_dsn)
    if failed:
        print(f"\n{failed} request(s) answered differently by the builds", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=3000, help="per request kind and build, over the rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of the interventions service")
    parser.add_argument("--before-rev", help="also run the build of this commit, side by side (git archive)")
    parser.add_argument("--before", default="/tmp/mif-before", help="where that build's tree is (exported if absent)")
    parser.add_argument("--db-pool-size", type=int, default=10, help="the service's pool (and as many overflow)")
    parser.add_argument("--explain-only", action="store_true", help="seed, print the plans, stop")
    add_admin_dsn(parser)
    arguments = parser.parse_args()
    if arguments.before_rev and not arguments.explain_only and not Path(arguments.before).exists():
        print(f"exporting {arguments.before_rev} into {arguments.before} (git archive)", flush=True)
        export_tree(arguments.before_rev, Path(arguments.before))
    raise SystemExit(asyncio.run(main(arguments)))

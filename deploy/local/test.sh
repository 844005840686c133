#!/usr/bin/env bash
# `make test`: lint, type-check, then every test against the local PostgreSQL and RabbitMQ.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/services.sh

prepare
ensure_chromium
ensure_pgbouncer
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy"
.venv/bin/mypy -p mif_common -p mif_auth -p mif_assets -p mif_interventions -p mif_planning -p mif_documents -p mif_notifications -p mif_inventory -p mif_reports -p mif_gateway
echo "==> pytest"
if [ "${MIF_TEST_COVERAGE:-1}" = 0 ]; then
  exec .venv/bin/pytest -n "${MIF_TEST_WORKERS:-2}" --dist loadgroup -p no:cacheprovider "$@"
fi

# Line and branch coverage of every process the tests start: pytest, its workers, the services and gateway
# the end-to-end suites run as uvicorn processes, the commands they call. COVERAGE_PROCESS_START makes the
# .pth file that coverage installs start measuring in each new Python process ([tool.coverage.run] in
# pyproject.toml); each writes its own data file in $coverage_dir (one per test namespace, so that two runs
# on one machine never mix), combined below. Report: htmlcov/index.html; threshold: [tool.coverage.report]
# fail_under, enforced on a whole run only (arguments select some tests).
coverage_dir="$PWD/var/coverage/${MIF_TEST_NAMESPACE:-default}"
rm -rf "$coverage_dir"
mkdir -p "$coverage_dir"
pytest_status=0
COVERAGE_PROCESS_START="$PWD/pyproject.toml" COVERAGE_FILE="$coverage_dir/.coverage" \
  .venv/bin/pytest -n "${MIF_TEST_WORKERS:-2}" --dist loadgroup -p no:cacheprovider "$@" || pytest_status=$?

echo "==> coverage"
export COVERAGE_FILE="$coverage_dir/.coverage"
coverage_status=0
.venv/bin/coverage combine --quiet || coverage_status=$?
if [ "$coverage_status" = 0 ]; then
  .venv/bin/coverage html --quiet || coverage_status=$?
  fail_under=()
  [ $# -eq 0 ] || fail_under=(--fail-under=0)
  .venv/bin/coverage report "${fail_under[@]}" || coverage_status=$?  # exits 2 below fail_under
  .venv/bin/coverage json --quiet -o "$coverage_dir/coverage.json" \
    && .venv/bin/python deploy/local/coverage_summary.py "$coverage_dir/coverage.json" || true
  echo "    HTML report: htmlcov/index.html; threshold: fail_under in pyproject.toml [tool.coverage.report]"
fi
if [ "$pytest_status" != 0 ]; then exit "$pytest_status"; fi
exit "$coverage_status"

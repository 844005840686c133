#!/usr/bin/env bash
# `make test`: lint, type-check, then every test against the local PostgreSQL and RabbitMQ.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/services.sh

prepare
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy"
.venv/bin/mypy -p mif_common -p mif_auth -p mif_assets -p mif_interventions -p mif_planning -p mif_documents -p mif_notifications -p mif_gateway
echo "==> pytest"
exec .venv/bin/pytest -n "${MIF_TEST_WORKERS:-2}" --dist loadgroup -p no:cacheprovider "$@"

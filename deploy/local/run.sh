#!/usr/bin/env bash
# `make run`: environment, database roles and schemas, migrations, first admin, then every service and
# the gateway as real processes (honcho). Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/services.sh

setup_suite
echo "==> starting the suite: gateway on http://127.0.0.1:8000 (docs: http://127.0.0.1:8000/docs)"
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/honcho -f Procfile start

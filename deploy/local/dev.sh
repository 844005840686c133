#!/usr/bin/env bash
# `make dev`: the same suite as `make run` (same setup, same Procfile), each process reloading when its
# own code or the shared library changes. The Procfile stays the one list of processes: this script
# derives a development copy of it with uvicorn's reload options added to each line.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/services.sh

setup_suite

mkdir -p var
procfile=var/Procfile.dev
: > "$procfile"
while IFS= read -r line; do
  name="${line%%:*}"
  case "$line" in
    *" uvicorn "*|*": uvicorn "*)
      if [ "$name" = gateway ]; then code=gateway; else code="services/$name"; fi
      # Watch only that process's package and the shared library: an edit to one service restarts
      # that service, an edit to mif_common restarts them all.
      line="$line --reload --reload-dir $code --reload-dir libs/mif-common"
      ;;
  esac
  printf '%s\n' "$line" >> "$procfile"
done < Procfile

echo "==> starting the suite with reload: gateway on http://127.0.0.1:8000 (docs: http://127.0.0.1:8000/docs)"
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/honcho -f "$procfile" -d . start

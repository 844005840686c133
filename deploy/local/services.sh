# Sourced by deploy/local/*.sh and .ci/run: tools and local servers the suite needs.
# PostgreSQL and RabbitMQ are expected as local installs (Debian packages) when not already running;
# with Docker, use `docker compose up` instead (see README).

ensure_uv() {
  if ! command -v uv >/dev/null 2>&1; then
    echo "==> installing uv (the workspace's package manager)"
    # A Debian interpreter refuses a system-wide install (PEP 668): then into the user's base.
    python3 -m pip install --quiet --disable-pip-version-check uv 2>/dev/null \
      || python3 -m pip install --quiet --disable-pip-version-check --user --break-system-packages uv
  fi
  if ! command -v uv >/dev/null 2>&1; then
    # Installed (now or earlier) where PATH does not look: the interpreter's scripts folder (pyenv keeps
    # it behind shims that need a rehash) or the user base's bin (a `pip install --user`).
    local dir
    for dir in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" \
      "$(python3 -m site --user-base)/bin"; do
      if [ -x "$dir/uv" ]; then export PATH="$dir:$PATH"; break; fi
    done
  fi
  command -v uv >/dev/null 2>&1 || { echo "uv was installed but is not on PATH" >&2; return 1; }
  # Trust the system's certificate store, as pip and curl do: uv otherwise uses its own bundled roots and
  # refuses a registry reached through a proxy whose CA only the system knows (a shell without
  # SSL_CERT_FILE then cannot build the workspace). UV_NATIVE_TLS is the older uv's name for it.
  export UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-1}" UV_NATIVE_TLS="${UV_NATIVE_TLS:-1}"
}

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  echo "==> starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
  fi
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && return 0; sleep 1; done
  echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; return 1
}

ensure_rabbitmq() {
  if (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then return 0; fi
  echo "==> starting RabbitMQ"
  if command -v rabbitmq-server >/dev/null 2>&1; then rabbitmq-server -detached || true; fi
  for _ in $(seq 1 90); do
    if (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then return 0; fi
    sleep 1
  done
  echo "RabbitMQ is not reachable on 127.0.0.1:5672" >&2; return 1
}

# A Debian package some tests drive the program of, installed when none of the given commands exists (as
# root, with apt-get); otherwise those tests say what is missing (and fail under CI).
# Usage: ensure_debian_package PACKAGE "WHAT IT IS FOR" COMMAND...
ensure_debian_package() {
  local package="$1" purpose="$2" found
  shift 2
  for found in "$@"; do
    if command -v "$found" >/dev/null 2>&1; then return 0; fi
  done
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing $package (Debian package) for $purpose"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null 2>&1; } \
      || echo "    could not install $package; $purpose will say so" >&2
  else
    echo "    no $package: install Debian's $package package to run $purpose" >&2
  fi
}

# The browser test of the offline API docs drives Debian's Chromium (tests/test_docs_browser_e2e.py).
ensure_chromium() {
  ensure_debian_package chromium "the browser test of the API docs" chromium chromium-browser
}

# The PgBouncer test runs a real PgBouncer in transaction mode (libs/mif-common/tests/test_db_connections.py).
ensure_pgbouncer() {
  ensure_debian_package pgbouncer "the PgBouncer test" pgbouncer /usr/sbin/pgbouncer
}

# assets' MQTT ingestion worker subscribes to a broker at 127.0.0.1:1883 (`make run`), and the MQTT tests
# publish to it: Debian's Mosquitto, started (installed first, as root) when nothing answers there.
ensure_mosquitto() {
  if (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then return 0; fi
  ensure_debian_package mosquitto "assets' MQTT ingestion (worker and tests)" mosquitto /usr/sbin/mosquitto
  local bin
  bin="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
  [ -x "$bin" ] || return 0
  echo "==> starting Mosquitto"
  if [ -f /etc/mosquitto/mosquitto.conf ]; then "$bin" -d -c /etc/mosquitto/mosquitto.conf || true
  else "$bin" -d -p 1883 || true; fi
  for _ in $(seq 1 20); do
    if (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  echo "Mosquitto is not reachable on 127.0.0.1:1883" >&2; return 1
}

ensure_servers() {
  ensure_postgres
  ensure_rabbitmq
  ensure_mosquitto
}

# Everything both `make run` and `make test` need before they start.
prepare() {
  ensure_uv
  uv sync --frozen --quiet
  ensure_servers
}

# `make run` and `make dev`: everything before the processes start (the above, the database roles, schemas
# and migrations, the first admin), in the development environment unless MIF_ENVIRONMENT says otherwise.
setup_suite() {
  prepare
  export MIF_ENVIRONMENT="${MIF_ENVIRONMENT:-development}"
  echo "==> database setup and migrations"
  .venv/bin/python -m mif_common.cli setup
  echo "==> first admin"
  .venv/bin/python -m mif_auth.bootstrap
}

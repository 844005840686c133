# Sourced by deploy/local/*.sh and .ci/run: tools and local servers the suite needs.
# PostgreSQL and RabbitMQ are expected as local installs (Debian packages) when not already running;
# with Docker, use `docker compose up` instead (see README).

ensure_uv() {
  if ! command -v uv >/dev/null 2>&1; then
    echo "==> installing uv (the workspace's package manager)"
    python3 -m pip install --quiet --disable-pip-version-check uv
  fi
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

# The browser test of the offline API docs drives Debian's Chromium (tests/test_docs_browser_e2e.py).
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Chromium (Debian package) for the browser test of the API docs"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; } \
      || echo "    could not install chromium; the browser test will say so" >&2
  else
    echo "    no Chromium: install Debian's chromium package to run the browser test of the API docs" >&2
  fi
}

ensure_servers() {
  ensure_postgres
  ensure_rabbitmq
}

# Everything both `make run` and `make test` need before they start.
prepare() {
  ensure_uv
  uv sync --frozen --quiet
  ensure_servers
}

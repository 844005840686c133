"""Offline checks of the deployment files: docker-compose.yml, deploy/Dockerfile, .dockerignore,
.env.example, the RabbitMQ definitions and the Kubernetes manifests under deploy/k8s (PgBouncer and the
database connection budget included).

Nothing here needs a Docker engine or a cluster. `docker compose config` and `kubectl kustomize` run
only where those tools exist (each such check is skipped on its own otherwise); everything else
parses the files with PyYAML and compares them with the suite's own tables (mif_common.suite,
mif_common.events.topology).
"""

from __future__ import annotations

import configparser
import importlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from mif_common.events.topology import DEAD_LETTER_EXCHANGE, EVENTS_EXCHANGE
from mif_common.suite import ALL_SERVICES, GATEWAY_PORT

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
COMPOSE_DEV_FILE = REPO / "deploy" / "compose" / "dev.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
HEALTHCHECK_SCRIPT = REPO / "deploy" / "healthcheck.py"
RABBITMQ_DIR = REPO / "deploy" / "rabbitmq"
K8S = REPO / "deploy" / "k8s"
K8S_BASE = K8S / "base"

PORTS: dict[str, int] = {s.name: s.port for s in ALL_SERVICES} | {"gateway": GATEWAY_PORT}
APPS = list(PORTS)  # the six services and the gateway, each a long-running uvicorn process
BACKENDS = [s.name for s in ALL_SERVICES]
INFRA = ("postgres", "rabbitmq", "mailpit", "mosquitto")
# Long-running processes of the suite's image that are not HTTP services behind the gateway: name ->
# (command, health port). Their own Deployment in Kubernetes, their own compose service.
WORKERS: dict[str, tuple[list[str], int]] = {
    "assets-mqtt": (["python", "-m", "mif_assets.mqtt_worker", "--port", "8017"], 8017),
}
SETUP_CMD = "python -m mif_common.cli setup"
BOOTSTRAP_CMD = "python -m mif_auth.bootstrap"
EXPECTED_UPSTREAMS = {s.name: f"http://{s.name}:{s.port}" for s in ALL_SERVICES}
APP_MODULE = re.compile(r"\b(mif_\w+)\.main:create_app\b")
PYTHON_MODULE = re.compile(r"\bpython -m (mif_\w+)((?:\.\w+)*)")
K8S_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
PGBOUNCER = "pgbouncer"  # the one Deployment that is not an app of the suite's image
PGBOUNCER_TEMPLATE = K8S_BASE / "pgbouncer.ini.template"
# PostgreSQL's default max_connections (100) less its 3 superuser slots and room for the setup Job,
# an operator's psql and monitoring.
POSTGRES_CONNECTION_BUDGET = 90


# --------------------------------------------------------------------------------------------- helpers


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@cache
def compose() -> dict[str, Any]:
    data = _load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def command_text(command: str | list[str] | None) -> str:
    if command is None:
        return ""
    return command if isinstance(command, str) else " ".join(str(part) for part in command)


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def healthcheck_enabled(service: dict[str, Any]) -> bool:
    hc = service.get("healthcheck") or {}
    return not hc.get("disable") and bool(hc.get("test")) and hc["test"] != ["NONE"]


def dependencies(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def walk_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from walk_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_strings(value)


_INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def interpolations(text: str) -> list[tuple[str, str | None, str | None]]:
    """(variable, operator, argument) for every compose interpolation in `text` (`$$` is a literal $)."""
    text = text.replace("$$", "")
    found: list[tuple[str, str | None, str | None]] = []
    for m in _INTERPOLATION.finditer(text):
        if m.group("bare"):
            found.append((m.group("bare"), None, None))
        else:
            found.append((m.group("name"), m.group("op"), m.group("arg")))
    leftover = _INTERPOLATION.sub("", text)
    assert "$" not in leftover, f"unparsable interpolation in {text!r}"
    return found


def compose_default(text: str) -> str:
    """`text` with every `${VAR:-default}` replaced by its default (what compose uses when unset)."""

    def repl(m: re.Match[str]) -> str:
        if m.group("op") in (":-", "-"):
            return m.group("arg") or ""
        raise AssertionError(f"no default in {m.group(0)!r}")

    return _INTERPOLATION.sub(repl, text.replace("$$", "$"))


def documented_variables() -> dict[str, str]:
    """`NAME=value` lines of .env.example, commented out (`# NAME=value`) or not."""
    found: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\s*#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def package_location(module: str) -> tuple[Path, Path]:
    """(directory that owns the package, package directory) for a top-level `mif_*` package."""
    if module == "mif_gateway":
        return REPO / "gateway", REPO / "gateway" / "mif_gateway"
    if module == "mif_common":
        return REPO / "libs" / "mif-common", REPO / "libs" / "mif-common" / "mif_common"
    name = module.removeprefix("mif_")
    return REPO / "services" / name, REPO / "services" / name / module


# ------------------------------------------------------------------------------------- docker compose


def test_compose_defines_every_service_and_the_infrastructure() -> None:
    names = set(services())
    missing = (set(APPS) | set(WORKERS) | {"setup", *INFRA}) - names
    assert not missing, f"docker-compose.yml lacks {sorted(missing)}"


def test_every_long_running_compose_service_has_a_healthcheck() -> None:
    lacking = [name for name, svc in services().items() if name != "setup" and not healthcheck_enabled(svc)]
    assert not lacking, f"no healthcheck: {lacking}"


@pytest.mark.parametrize("name", APPS)
def test_app_healthcheck_probes_its_own_liveness_without_curl(name: str) -> None:
    test = services()[name]["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL")
    text = command_text(test)
    assert f"http://127.0.0.1:{PORTS[name]}/health/live" in text
    assert "curl" not in text and "wget" not in text
    assert "/app/deploy/healthcheck.py" in text
    assert HEALTHCHECK_SCRIPT.is_file()


def test_only_the_gateway_publishes_ports() -> None:
    publishing = {name for name, svc in services().items() if svc.get("ports")}
    assert publishing == {"gateway"}
    published = [str(p) for p in services()["gateway"]["ports"]]
    assert len(published) == 1 and published[0].endswith(f":{GATEWAY_PORT}"), published
    assert not [name for name, svc in services().items() if svc.get("network_mode") == "host"]


@pytest.mark.parametrize("name", BACKENDS)
def test_services_expose_their_port_to_the_compose_network(name: str) -> None:
    assert [str(p) for p in services()[name].get("expose", [])] == [str(PORTS[name])]


def test_dev_override_publishes_only_on_loopback() -> None:
    override = _load_yaml(COMPOSE_DEV_FILE)
    for name, svc in override["services"].items():
        assert name in services(), f"{name} is not a service of docker-compose.yml"
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert "mailpit" in override["services"]


def test_depends_on_conditions_reference_existing_services() -> None:
    valid = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, svc in services().items():
        for dep, condition in dependencies(svc).items():
            assert dep in services() and dep != name, f"{name} depends on unknown {dep}"
            assert condition in valid, f"{name} -> {dep}: {condition}"
            if condition == "service_healthy":
                assert healthcheck_enabled(services()[dep]), f"{name} waits for {dep} healthy; it has no healthcheck"
            if condition == "service_completed_successfully":
                assert services()[dep].get("restart") == "no", f"{dep} is awaited to complete but restarts"


def test_depends_on_has_no_cycle() -> None:
    graph = {name: set(dependencies(svc)) for name, svc in services().items()}
    done: set[str] = set()
    while graph.keys() - done:
        ready = {n for n in graph.keys() - done if graph[n] <= done}
        assert ready, f"dependency cycle among {sorted(graph.keys() - done)}"
        done |= ready


@pytest.mark.parametrize("name", APPS)
def test_apps_wait_for_setup_and_broker(name: str) -> None:
    deps = dependencies(services()[name])
    assert deps.get("setup") == "service_completed_successfully"
    assert deps.get("rabbitmq") == "service_healthy"
    if name != "gateway":
        assert deps.get("postgres") == "service_healthy"


def test_setup_service_runs_setup_then_bootstrap() -> None:
    setup = services()["setup"]
    text = command_text(setup["command"])
    assert SETUP_CMD in text and BOOTSTRAP_CMD in text
    between = text[text.index(SETUP_CMD) + len(SETUP_CMD) : text.index(BOOTSTRAP_CMD)]
    assert between.strip() == "&&", "bootstrap must run only after a successful setup"
    assert setup.get("restart") == "no"
    # The broker too: setup declares every service's event queue before any service starts.
    assert dependencies(setup) == {"postgres": "service_healthy", "rabbitmq": "service_healthy"}
    env = env_of(setup)
    required = {"MIF_ADMIN_DSN", "MIF_DATABASE_NAME", "MIF_ADMIN_EMAIL", "MIF_ADMIN_PASSWORD", "MIF_AUTH_DATABASE_URL"}
    required |= {"MIF_AMQP_URL"}
    required |= {f"MIF_{s.name.upper()}_DB_PASSWORD" for s in ALL_SERVICES}
    assert not required - env.keys(), f"setup lacks {sorted(required - env.keys())}"
    admin = urlsplit(compose_default(env["MIF_ADMIN_DSN"]))
    assert admin.scheme == "postgresql" and admin.hostname == "postgres" and admin.port == 5432


@pytest.mark.parametrize("svc", ALL_SERVICES, ids=lambda s: s.name)
def test_service_database_url_uses_its_role_and_the_password_setup_gave_it(svc: Any) -> None:
    setup_env = env_of(services()["setup"])
    key = f"MIF_{svc.name.upper()}_DATABASE_URL"
    url = env_of(services()[svc.name])[key]
    password = setup_env[f"MIF_{svc.name.upper()}_DB_PASSWORD"]
    assert url == f"postgresql+asyncpg://{svc.db_role}:{password}@postgres:5432/{setup_env['MIF_DATABASE_NAME']}"
    if svc.name == "auth":
        assert setup_env[key] == url  # bootstrap connects like auth does


@pytest.mark.parametrize("name", APPS)
def test_apps_share_broker_and_auth_settings(name: str) -> None:
    env = env_of(services()[name])
    amqp = urlsplit(compose_default(env["MIF_AMQP_URL"]))
    assert (amqp.scheme, amqp.hostname, amqp.port, amqp.path) == ("amqp", "rabbitmq", 5672, "/")
    assert env["MIF_AUTH_URL"] == f"http://auth:{PORTS['auth']}"


def test_gateway_upstreams_name_every_service() -> None:
    upstreams = json.loads(env_of(services()["gateway"])["MIF_GATEWAY_UPSTREAMS"])
    assert upstreams == EXPECTED_UPSTREAMS


def test_state_lives_in_volumes() -> None:
    declared = set(compose().get("volumes") or {})
    for name, svc in services().items():
        for volume in svc.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"

    def mount_targets(name: str) -> set[str]:
        return {str(v).split(":")[1] for v in services()[name].get("volumes", [])}

    assert env_of(services()["documents"])["MIF_DOCUMENTS_STORAGE_DIR"] in mount_targets("documents")
    assert env_of(services()["auth"])["MIF_AUTH_KEY_DIR"] in mount_targets("auth")
    assert "/var/lib/postgresql/data" in mount_targets("postgres")
    assert "/var/lib/rabbitmq" in mount_targets("rabbitmq")


def test_notifications_send_mail_to_the_local_catcher() -> None:
    env = env_of(services()["notifications"])
    assert env["MIF_NOTIFICATIONS_SMTP_HOST"] == "mailpit"
    assert str(env["MIF_NOTIFICATIONS_SMTP_PORT"]) in {str(p) for p in services()["mailpit"]["expose"]}
    assert dependencies(services()["notifications"]).get("mailpit") == "service_healthy"


def test_app_services_share_one_image_built_from_the_dockerfile() -> None:
    apps = [services()[name] for name in [*APPS, "setup"]]
    images = {svc.get("image") for svc in apps}
    builds = {json.dumps(svc.get("build"), sort_keys=True) for svc in apps}
    assert len(images) == 1 and None not in images, images
    assert len(builds) == 1, builds
    build = apps[0]["build"]
    assert build["context"] == "."
    assert (REPO / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    for name in INFRA:
        svc = services()[name]
        assert "build" not in svc
        image = svc["image"]
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), f"{name}: pin {image}"
    assert services()["postgres"]["image"] == "postgres:15"
    assert services()["rabbitmq"]["image"] == "rabbitmq:3.13-management"


def _compose_files_variables() -> list[tuple[str, str | None, str | None]]:
    found = []
    for path in (COMPOSE_FILE, COMPOSE_DEV_FILE):
        for text in walk_strings(_load_yaml(path)):
            found.extend(interpolations(text))
    return found


def test_every_interpolation_has_a_default_or_is_documented() -> None:
    documented = documented_variables()
    undocumented = sorted(
        {name for name, op, _ in _compose_files_variables() if op not in (":-", "-")} - set(documented)
    )
    assert not undocumented, f"set without a default and not in .env.example: {undocumented}"


def test_each_variable_has_one_default_and_env_example_agrees() -> None:
    defaults: dict[str, set[str]] = {}
    for name, op, arg in _compose_files_variables():
        if op in (":-", "-"):
            defaults.setdefault(name, set()).add(arg or "")
    conflicting = {name: values for name, values in defaults.items() if len(values) > 1}
    assert not conflicting, f"different defaults for one variable: {conflicting}"
    documented = documented_variables()
    for name, values in defaults.items():
        if name in documented:
            assert documented[name] == next(iter(values)), f".env.example says {name}={documented[name]}"
    used = {name for name, _, _ in _compose_files_variables()}
    stale = sorted(set(documented) - used)
    assert not stale, f".env.example documents variables no compose file reads: {stale}"


@cache
def _compose_cli() -> tuple[str, ...] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        return (docker, "compose")
    standalone = shutil.which("docker-compose")
    if standalone:
        out = subprocess.run([standalone, "version"], capture_output=True, text=True, timeout=30).stdout
        if "v2." in out or "version 2." in out:
            return (standalone,)
    return None


@pytest.mark.parametrize("extra", [[], ["-f", str(COMPOSE_DEV_FILE)]], ids=["base", "with-dev-override"])
def test_docker_compose_config_validates(extra: list[str], tmp_path: Path) -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no Docker Compose v2 client (docker compose / docker-compose) on this machine")
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    result = subprocess.run(
        [*cli, "--env-file", str(empty_env), "-f", str(COMPOSE_FILE), *extra, "config", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------------------- RabbitMQ


@cache
def definitions() -> dict[str, Any]:
    found: dict[str, Any] = json.loads((RABBITMQ_DIR / "definitions.json").read_text(encoding="utf-8"))
    return found


def test_rabbitmq_definitions_declare_exactly_the_topology_exchanges() -> None:
    exchanges = {e["name"]: e for e in definitions()["exchanges"]}
    assert set(exchanges) == {EVENTS_EXCHANGE, DEAD_LETTER_EXCHANGE}
    assert exchanges[EVENTS_EXCHANGE]["type"] == "topic"
    assert exchanges[DEAD_LETTER_EXCHANGE]["type"] == "direct"
    for exchange in exchanges.values():
        # Must match what declare_exchanges() asks for, or the broker refuses the redeclaration.
        assert exchange["vhost"] == "/"
        assert exchange["durable"] is True
        assert exchange["auto_delete"] is False
        assert exchange["internal"] is False
        assert exchange.get("arguments", {}) == {}
    # Consumer queues (quorum, with their DLQs) are declared by the services themselves.
    assert definitions().get("queues", []) == []


def test_rabbitmq_user_matches_the_compose_broker_url() -> None:
    amqp = urlsplit(compose_default(env_of(services()["auth"])["MIF_AMQP_URL"]))
    users = {u["name"]: u for u in definitions()["users"]}
    assert amqp.username in users and amqp.password
    user = users[amqp.username]
    assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    hashing = load_module(RABBITMQ_DIR / "hash_password.py")
    assert hashing.verify(amqp.password, user["password_hash"]), "definitions.json hash != compose default password"
    assert not hashing.verify(amqp.password + "x", user["password_hash"])
    assert {"name": "/"} in [{"name": v["name"]} for v in definitions()["vhosts"]]
    assert {"user": amqp.username, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"} in definitions()[
        "permissions"
    ]


def test_rabbitmq_config_loads_the_mounted_definitions() -> None:
    settings = {}
    for line in (RABBITMQ_DIR / "rabbitmq.conf").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    mounts = {str(v).split(":")[0]: str(v).split(":")[1] for v in services()["rabbitmq"]["volumes"]}
    assert mounts["./deploy/rabbitmq/definitions.json"] == settings["load_definitions"]
    conf_target = mounts["./deploy/rabbitmq/rabbitmq.conf"]
    assert conf_target == "/etc/rabbitmq/rabbitmq.conf" or re.fullmatch(
        r"/etc/rabbitmq/conf\.d/[\w.-]+\.conf", conf_target
    )
    assert services()["rabbitmq"].get("hostname"), "a fixed hostname keeps the node's data across recreation"
    assert command_text(services()["rabbitmq"]["healthcheck"]["test"]).startswith("CMD rabbitmq-diagnostics")


def test_password_hash_helper_round_trips() -> None:
    hashing = load_module(RABBITMQ_DIR / "hash_password.py")
    digest = hashing.rabbit_password_hash("s3cret", salt=b"\x00\x01\x02\x03")
    assert hashing.verify("s3cret", digest)
    assert hashing.rabbit_password_hash("s3cret", salt=b"\x00\x01\x02\x03") == digest


# ----------------------------------------------------------------------------- Dockerfile and context


def dockerfile_instructions() -> list[tuple[str, str]]:
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, rest = pending.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    instructions = dockerfile_instructions()
    args: dict[str, str] = {}
    for keyword, rest in instructions:
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args.setdefault(name, value)
    froms = [rest.split()[0] for keyword, rest in instructions if keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    resolved = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image) for image in froms]
    assert resolved[0] == resolved[-1] == "python:3.11-slim", resolved


def test_dockerfile_installs_from_the_lock_file_with_uv() -> None:
    instructions = dockerfile_instructions()
    runs = [(i, rest) for i, (keyword, rest) in enumerate(instructions) if keyword == "RUN"]
    syncs = [(i, rest) for i, rest in runs if "uv sync" in rest]
    assert syncs, "uv sync expected"
    for _, rest in syncs:
        assert "--frozen" in rest and "--no-dev" in rest, rest
    lock_copied = [i for i, (keyword, rest) in enumerate(instructions) if keyword == "COPY" and "uv.lock" in rest]
    assert lock_copied and lock_copied[0] < syncs[0][0], "uv.lock must be in the image before uv sync"


def test_dockerfile_runs_as_a_non_root_user_with_a_python_healthcheck() -> None:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    users = [rest for keyword, rest in instructions[last_from:] if keyword == "USER"]
    assert users, "the runtime stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user.isdigit(), "a numeric uid lets Kubernetes verify runAsNonRoot"
    healthchecks = [rest for keyword, rest in instructions[last_from:] if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert "python" in healthchecks[0] and "curl" not in healthchecks[0] and "wget" not in healthchecks[0]
    assert [keyword for keyword, _ in instructions[last_from:]].count("CMD") == 1


def _dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    patterns = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(line):
            if line.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif line.startswith("**", i):
                regex += ".*"
                i += 2
            elif line[i] == "*":
                regex += "[^/]*"
                i += 1
            elif line[i] == "?":
                regex += "[^/]"
                i += 1
            else:
                regex += re.escape(line[i])
                i += 1
        patterns.append((negate, re.compile(regex)))
    return patterns


def dockerignored(path: str) -> bool:
    """Whether the build context leaves `path` out (Docker's rule: the last matching pattern wins, and
    a path is out when it or one of its parent directories matches)."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, pattern in _dockerignore_patterns():
        if any(pattern.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_what_the_image_needs_and_drops_local_state() -> None:
    needed = [
        "pyproject.toml",
        "uv.lock",
        "libs/mif-common/pyproject.toml",
        "libs/mif-common/mif_common/suite.py",
        "gateway/pyproject.toml",
        "gateway/mif_gateway/__init__.py",
        "services/auth/pyproject.toml",
        "services/auth/mif_auth/__init__.py",
        "services/auth/alembic.ini",
        "services/auth/migrations/env.py",
        "deploy/healthcheck.py",
    ]
    assert not [p for p in needed if dockerignored(p)]
    dropped = [
        ".git/HEAD",
        ".venv/bin/python",
        ".env",
        "var/auth-keys/signing-key.pem",
        "libs/mif-common/mif_common/__pycache__/suite.cpython-311.pyc",
        ".pytest_cache/v",
        ".mypy_cache/3.11",
    ]
    assert not [p for p in dropped if not dockerignored(p)]


def test_healthcheck_script_reports_liveness(tmp_path: Path) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health/live" else 503)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:

        def probe(*args: str, **env: str) -> int:
            return subprocess.run(
                [sys.executable, str(HEALTHCHECK_SCRIPT), *args],
                capture_output=True,
                timeout=30,
                env={"PATH": "/usr/bin:/bin", **env},
                cwd=tmp_path,
            ).returncode

        assert probe(f"http://127.0.0.1:{port}/health/live") == 0
        assert probe(PORT=str(port)) == 0
        assert probe(f"http://127.0.0.1:{port}/health/ready") == 1
    finally:
        server.shutdown()
        server.server_close()
    assert probe(f"http://127.0.0.1:{port}/health/live") == 1  # nothing listens any more


# --------------------------------------------------------------------------- module paths in commands


def all_commands() -> list[tuple[str, str]]:
    found = [(f"compose:{name}", command_text(svc.get("command"))) for name, svc in services().items()]
    for doc in base_objects():
        for container in (pod_spec(doc) or {}).get("containers", []):
            text = command_text(container.get("command")) + " " + command_text(container.get("args"))
            found.append((f"k8s:{doc['kind']}/{doc['metadata']['name']}", text))
    return found


def test_module_paths_in_commands_are_packages_of_the_repository() -> None:
    modules: set[str] = set()
    for _, text in all_commands():
        modules |= set(APP_MODULE.findall(text))
        modules |= {m.group(1) for m in PYTHON_MODULE.finditer(text)}
    expected = {f"mif_{name}" for name in APPS} | {"mif_common", "mif_auth"}
    assert modules == expected, modules ^ expected
    checked = []
    for module in sorted(modules):
        owner, package = package_location(module)
        if not owner.is_dir():
            continue  # that service is not written yet; its command is checked once it is
        assert (package / "__init__.py").is_file(), f"{module}: no package at {package.relative_to(REPO)}"
        main = package / "main.py"
        if main.is_file():  # once written, it must provide the factory the command names
            assert re.search(r"^def create_app\(", main.read_text(encoding="utf-8"), re.M), f"{main}: no create_app()"
        checked.append(module)
    assert checked, "no command's package exists in this checkout"


def test_setup_defaults_pass_auths_own_rules() -> None:
    """The compose defaults for the first admin must be accepted by mif_auth.bootstrap."""
    passwords = pytest.importorskip("mif_auth.passwords")
    email_validator = pytest.importorskip("email_validator")
    env = {key: compose_default(value) for key, value in env_of(services()["setup"]).items()}
    email_validator.validate_email(env["MIF_ADMIN_EMAIL"], check_deliverability=False)
    failures = passwords.policy_failures(
        env["MIF_ADMIN_PASSWORD"], username=env["MIF_ADMIN_USERNAME"], email=env["MIF_ADMIN_EMAIL"]
    )
    assert not failures, f"MIF_ADMIN_PASSWORD default is refused: {failures}"


@pytest.mark.parametrize("name", APPS)
def test_compose_and_k8s_run_the_same_app_on_the_same_port(name: str) -> None:
    expected = f"mif_{name}.main:create_app"
    port = str(PORTS[name])
    for where, cmd in (
        ("compose", services()[name]["command"]),
        ("k8s", deployments()[name]["spec"]["template"]["spec"]["containers"][0]["command"]),
    ):
        assert cmd[:3] == ["uvicorn", "--factory", expected], (where, cmd)
        assert cmd[cmd.index("--port") + 1] == port, (where, cmd)
        assert cmd[cmd.index("--host") + 1] == "0.0.0.0", (where, cmd)


# ----------------------------------------------------------------------------------------- Kubernetes


def k8s_yaml_files() -> list[Path]:
    return sorted([*K8S.rglob("*.yaml"), *K8S.rglob("*.yml")])


def kustomization_files() -> list[Path]:
    return [p for p in k8s_yaml_files() if p.name in ("kustomization.yaml", "kustomization.yml")]


@cache
def base_objects() -> tuple[dict[str, Any], ...]:
    kustomization = _load_yaml(K8S_BASE / "kustomization.yaml")
    objects: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        objects.extend(doc for doc in yaml.safe_load_all((K8S_BASE / resource).read_text()) if doc)
    return tuple(objects)


def of_kind(
    kind: str, objects: tuple[dict[str, Any], ...] | list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    return [doc for doc in (base_objects() if objects is None else objects) if doc["kind"] == kind]


def deployments() -> dict[str, dict[str, Any]]:
    """Every Deployment of the base: the suite's apps and PgBouncer."""
    return {doc["metadata"]["name"]: doc for doc in of_kind("Deployment")}


def app_deployments() -> dict[str, dict[str, Any]]:
    """The Deployments that run the suite's image (the six services and the gateway)."""
    return {name: doc for name, doc in deployments().items() if name != PGBOUNCER}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
        spec: dict[str, Any] = doc["spec"]["template"]["spec"]
        return spec
    return None


def pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = doc["spec"]["template"]["metadata"].get("labels", {})
    return labels


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (an empty selector selects everything)."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def config_env() -> dict[str, str]:
    values = {}
    for line in (K8S_BASE / "config.env").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def secret_keys() -> dict[str, set[str]]:
    return {
        doc["metadata"]["name"]: set(doc.get("stringData", {})) | set(doc.get("data", {})) for doc in of_kind("Secret")
    }


def test_every_k8s_yaml_parses_and_names_its_kind() -> None:
    files = k8s_yaml_files()
    assert files
    for path in files:
        docs = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
        assert docs, f"{path.relative_to(REPO)} is empty"
        for doc in docs:
            assert isinstance(doc, dict) and doc.get("kind"), f"{path.relative_to(REPO)}: a document without kind"


def test_kustomizations_reference_existing_files() -> None:
    kustomizations = kustomization_files()
    assert {p.parent for p in kustomizations} >= {K8S_BASE, K8S / "overlays" / "dev", K8S / "overlays" / "prod"}
    for path in kustomizations:
        k = _load_yaml(path)
        here = path.parent
        for entry in [*k.get("resources", []), *k.get("components", [])]:
            target = here / entry
            assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{path}: {entry} missing"
        for patch in k.get("patches", []):
            if "path" in patch:
                assert (here / patch["path"]).is_file(), f"{path}: patch {patch['path']} missing"
        for generator in [*k.get("configMapGenerator", []), *k.get("secretGenerator", [])]:
            for entry in [*generator.get("envs", []), *generator.get("files", [])]:
                assert (here / entry.split("=")[-1]).is_file(), f"{path}: {entry} missing"
    for overlay in ("dev", "prod"):
        k = _load_yaml(K8S / "overlays" / overlay / "kustomization.yaml")
        assert "../../base" in k["resources"]
        assert any(image["name"] == "mif-suite" and image.get("newTag") for image in k["images"])


@pytest.mark.parametrize("name", WORKERS)
def test_workers_run_the_same_command_in_compose_k8s_and_the_procfile(name: str) -> None:
    command, port = WORKERS[name]
    procfile = dict(line.split(": ", 1) for line in (REPO / "Procfile").read_text().splitlines() if line.strip())
    assert procfile[name].split() == command
    assert services()[name]["command"] == command
    assert f"http://127.0.0.1:{port}/health/live" in command_text(services()[name]["healthcheck"]["test"])
    container = deployments()[name]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == command
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert deployments()[name]["spec"]["replicas"] == 1  # one MQTT client identifier


def test_base_has_a_deployment_and_a_service_per_app() -> None:
    assert set(deployments()) == {*APPS, *WORKERS, PGBOUNCER}
    services_by_name = {doc["metadata"]["name"]: doc for doc in of_kind("Service")}
    for name, deployment in app_deployments().items():
        if name in WORKERS:
            continue
        assert selects(deployment["spec"]["selector"], pod_labels(deployment))
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "mif-suite"
        assert [p["containerPort"] for p in container["ports"]] == [PORTS[name]]
        service = services_by_name[name]
        assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels(deployment))
        assert [p["port"] for p in service["spec"]["ports"]] == [PORTS[name]]


@pytest.mark.parametrize("name", [*APPS, *WORKERS])
def test_deployment_has_probes_resources_and_a_restricted_security_context(name: str) -> None:
    spec = deployments()[name]["spec"]["template"]["spec"]
    assert spec.get("automountServiceAccountToken") is False
    pod_security = spec.get("securityContext", {})
    for container in spec["containers"]:
        liveness = container["livenessProbe"]["httpGet"]
        readiness = container["readinessProbe"]["httpGet"]
        assert liveness["path"] == "/health/live"
        assert readiness["path"] == "/health/ready"
        for resources in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][resources]), (name, resources)
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, "a read-only root file system needs a writable /tmp"


def test_each_deployment_has_its_own_pod_disruption_budget() -> None:
    pdbs = of_kind("PodDisruptionBudget")
    for name, deployment in deployments().items():
        matching = [pdb for pdb in pdbs if selects(pdb["spec"]["selector"], pod_labels(deployment))]
        assert len(matching) == 1, f"{name}: {len(matching)} PodDisruptionBudgets"
        others = [
            n for n, d in deployments().items() if n != name and selects(matching[0]["spec"]["selector"], pod_labels(d))
        ]
        assert not others, f"the PDB of {name} also selects {others}"
        assert "maxUnavailable" in matching[0]["spec"] or "minAvailable" in matching[0]["spec"]


def test_gateway_and_interventions_autoscale() -> None:
    targets = {hpa["spec"]["scaleTargetRef"]["name"]: hpa for hpa in of_kind("HorizontalPodAutoscaler")}
    assert {"gateway", "interventions"} <= set(targets)
    for name, hpa in targets.items():
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment" and name in deployments()
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert "replicas" not in deployments()[name]["spec"], f"{name}: leave replicas to the HPA"


def _external(peer: dict[str, Any]) -> bool:
    return "namespaceSelector" in peer or "ipBlock" in peer


def test_network_policies_deny_by_default_and_let_only_the_gateway_in_from_outside() -> None:
    policies = of_kind("NetworkPolicy")
    default_deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] in ({}, None)
        and "Ingress" in p["spec"]["policyTypes"]
        and not p["spec"].get("ingress")
    ]
    assert default_deny, "a default-deny ingress policy is expected"
    gateway_labels = pod_labels(deployments()["gateway"])
    gateway_open = False
    for policy in policies:
        selected = [n for n, d in deployments().items() if selects(policy["spec"]["podSelector"], pod_labels(d))]
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from")
            if not peers or any(_external(peer) for peer in peers):
                assert selected == ["gateway"], f"{policy['metadata']['name']} lets outside traffic reach {selected}"
                assert [p["port"] for p in rule.get("ports", [])] == [GATEWAY_PORT]
                gateway_open = True
    assert gateway_open, "nothing lets the ingress controller reach the gateway"
    for name in BACKENDS:
        labels = pod_labels(deployments()[name])
        allowed = [
            rule
            for policy in policies
            if selects(policy["spec"]["podSelector"], labels)
            for rule in policy["spec"].get("ingress") or []
            if any(
                not _external(peer) and selects(peer.get("podSelector"), gateway_labels)
                for peer in rule.get("from", [])
            )
            and PORTS[name] in [p["port"] for p in rule.get("ports", [])]
        ]
        assert allowed, f"the gateway cannot reach {name} on {PORTS[name]}"


def test_ingress_routes_to_the_gateway_only() -> None:
    ingresses = of_kind("Ingress")
    assert ingresses
    for ingress in ingresses:
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"] == {"name": "gateway", "port": {"number": GATEWAY_PORT}}


def test_setup_job_runs_setup_then_bootstrap() -> None:
    jobs = of_kind("Job")
    assert len(jobs) == 1
    spec = pod_spec(jobs[0])
    assert spec is not None and spec["restartPolicy"] in ("Never", "OnFailure")
    container = spec["containers"][0]
    text = command_text(container["command"])
    assert SETUP_CMD in text and BOOTSTRAP_CMD in text
    assert text[text.index(SETUP_CMD) + len(SETUP_CMD) : text.index(BOOTSTRAP_CMD)].strip() == "&&"
    names = {e["name"] for e in container["env"]}
    required = {"MIF_ADMIN_DSN", "MIF_ADMIN_EMAIL", "MIF_ADMIN_PASSWORD", "MIF_AUTH_DATABASE_URL"}
    required |= {f"MIF_{s.name.upper()}_DB_PASSWORD" for s in ALL_SERVICES}
    assert not required - names, sorted(required - names)
    assert "MIF_DATABASE_NAME" in config_env()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"requests", "limits"} <= set(container["resources"])


def test_container_environment_is_fully_defined() -> None:
    config = config_env()
    secrets = secret_keys()
    for doc in [*of_kind("Deployment"), *of_kind("Job")]:
        spec = pod_spec(doc)
        assert spec is not None
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            where = f"{doc['kind']}/{doc['metadata']['name']}/{container['name']}"
            defined = set()
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] == "mif-config", where
                defined |= set(config)
            for entry in container.get("env", []):
                ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets.get(ref["name"], set()), f"{where}: {ref} not in the Secret template"
                for used in K8S_VAR_REF.findall(entry.get("value", "")):
                    assert used in defined, f"{where}: {entry['name']} uses $({used}) before it is defined"
                defined.add(entry["name"])
            for used in K8S_VAR_REF.findall(command_text(container.get("command"))):
                assert used in defined, f"{where}: command uses undefined $({used})"


@pytest.mark.parametrize("svc", ALL_SERVICES, ids=lambda s: s.name)
def test_k8s_service_connects_with_its_own_role(svc: Any) -> None:
    """Through PgBouncer with the statement caches off; LISTEN straight to PostgreSQL."""
    env = {e["name"]: e for e in deployments()[svc.name]["spec"]["template"]["spec"]["containers"][0]["env"]}
    upper = svc.name.upper()
    via = f"postgresql+asyncpg://{svc.db_role}:$(MIF_{upper}_DB_PASSWORD)@{{host}}/$(MIF_DATABASE_NAME)"
    assert env[f"MIF_{upper}_DATABASE_URL"]["value"] == via.format(host="$(MIF_PGBOUNCER_HOST):$(MIF_PGBOUNCER_PORT)")
    assert env[f"MIF_{upper}_DIRECT_DATABASE_URL"]["value"] == via.format(host="$(MIF_DB_HOST):$(MIF_DB_PORT)")
    assert env[f"MIF_{upper}_DB_PGBOUNCER"]["value"] == "true"
    assert env[f"MIF_{upper}_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == f"MIF_{upper}_DB_PASSWORD"


def test_k8s_configuration_matches_the_suite() -> None:
    config = config_env()
    assert json.loads(config["MIF_GATEWAY_UPSTREAMS"]) == EXPECTED_UPSTREAMS
    assert config["MIF_AUTH_URL"] == f"http://auth:{PORTS['auth']}"
    assert config["MIF_ENVIRONMENT"] in ("development", "test", "production")
    origins = json.loads(config["MIF_GATEWAY_CORS_ORIGINS"])
    assert isinstance(origins, list) and all(isinstance(o, str) for o in origins)


def test_secret_template_holds_only_marked_placeholders() -> None:
    not_secret = {"MIF_ADMIN_EMAIL"}
    for secret in of_kind("Secret"):
        assert "template" in " ".join(secret["metadata"].get("annotations", {})), secret["metadata"]["name"]
        assert "data" not in secret, "use stringData so that placeholders stay readable"
        for key, value in secret["stringData"].items():
            if key not in not_secret:
                assert "CHANGE-ME" in value, f"{secret['metadata']['name']}.{key} is not marked as a placeholder"


# ------------------------------------------------------------------------- PgBouncer and the connections


def pgbouncer_ini() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"), strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep `*` and the keys as written
    parser.read_string(PGBOUNCER_TEMPLATE.read_text(encoding="utf-8"))
    return parser


def render(value: str, values: dict[str, str]) -> str:
    """`value` with every Kubernetes `$(VAR)` replaced from `values`."""
    return K8S_VAR_REF.sub(lambda m: values[m.group(1)], value)


def test_pgbouncer_pools_transactions_in_front_of_postgresql() -> None:
    ini = pgbouncer_ini()
    bouncer = ini["pgbouncer"]
    assert bouncer["pool_mode"] == "transaction"
    config = config_env()
    port = int(bouncer["listen_port"])
    assert config["MIF_PGBOUNCER_PORT"] == str(port)
    deployment = deployments()[PGBOUNCER]
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    (init,) = spec["initContainers"]
    assert [p["containerPort"] for p in container["ports"]] == [port]
    service = next(doc for doc in of_kind("Service") if doc["metadata"]["name"] == config["MIF_PGBOUNCER_HOST"])
    assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels(deployment))
    assert [p["port"] for p in service["spec"]["ports"]] == [port]
    # A pinned PgBouncer image, the same for the container and the step writing its configuration.
    image = container["image"]
    assert init["image"] == image and "pgbouncer" in image
    assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image
    # PostgreSQL's address comes from mif-config, filled into the template by the init container.
    assert ini["databases"]["*"] == "host=@DB_HOST@ port=@DB_PORT@"
    script = command_text(init["command"])
    assert '"s|@DB_HOST@|$MIF_DB_HOST|"' in script and '"s|@DB_PORT@|$MIF_DB_PORT|"' in script
    assert {"MIF_DB_HOST", "MIF_DB_PORT"} <= set(config)
    assert [source["configMapRef"]["name"] for source in init["envFrom"]] == ["mif-config"]
    # Every service's role is in the auth file, with the password of its Secret key.
    init_env = {e["name"]: e for e in init["env"]}
    for svc in ALL_SERVICES:
        key = f"MIF_{svc.name.upper()}_DB_PASSWORD"
        assert f'printf \'"{svc.db_role}" "%s"\\n\' "${key}"' in script, svc.name
        assert init_env[key]["valueFrom"]["secretKeyRef"] == {"name": "mif-secrets", "key": key}
    # The configuration the init container writes is what PgBouncer reads.
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    init_mounts = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
    assert command_text(container["command"]) == f"pgbouncer {mounts['config']}/pgbouncer.ini"
    assert init_mounts["config"] == mounts["config"] and "emptyDir" in volumes["config"]
    assert bouncer["auth_file"] == f"{mounts['config']}/userlist.txt"
    assert volumes["template"]["configMap"]["name"] == "pgbouncer-config"
    kustomization = _load_yaml(K8S_BASE / "kustomization.yaml")
    generated = {g["name"]: g for g in kustomization["configMapGenerator"]}
    assert generated["pgbouncer-config"]["files"] == [PGBOUNCER_TEMPLATE.name]
    assert f"{init_mounts['template']}/{PGBOUNCER_TEMPLATE.name}" in script
    # A restricted pod like the others, probed on its port.
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["tcpSocket"]["port"] in (port, "pgbouncer"), probe
    assert spec["securityContext"]["runAsNonRoot"] is True and spec.get("automountServiceAccountToken") is False
    for each in (init, container):
        assert each["securityContext"]["readOnlyRootFilesystem"] is True
        assert each["securityContext"]["allowPrivilegeEscalation"] is False
        assert each["securityContext"]["capabilities"]["drop"] == ["ALL"]
        for resources in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(each["resources"][resources])


def test_pgbouncer_takes_connections_from_the_services_only() -> None:
    labels = pod_labels(deployments()[PGBOUNCER])
    port = int(pgbouncer_ini()["pgbouncer"]["listen_port"])
    rules = [
        rule
        for policy in of_kind("NetworkPolicy")
        if selects(policy["spec"]["podSelector"], labels)
        for rule in policy["spec"].get("ingress") or []
    ]
    assert rules, "no policy lets the services reach PgBouncer"
    for rule in rules:
        assert [p["port"] for p in rule["ports"]] == [port]
        peers = rule["from"]
        assert not any(_external(peer) for peer in peers)
        reaching = {
            name for name, d in deployments().items() if any(selects(p["podSelector"], pod_labels(d)) for p in peers)
        }
        assert reaching == set(BACKENDS) | set(WORKERS), reaching


def test_migrations_and_bootstrap_connect_straight_to_postgresql() -> None:
    """The setup Job sets search_path for its session (migrations): never through transaction pooling."""
    (job,) = of_kind("Job")
    env = {e["name"]: e for e in pod_spec(job)["containers"][0]["env"]}  # type: ignore[index]
    assert "$(MIF_DB_HOST):$(MIF_DB_PORT)" in env["MIF_AUTH_DATABASE_URL"]["value"]
    assert "$(MIF_DB_HOST):$(MIF_DB_PORT)" in env["MIF_ADMIN_DSN"]["value"]
    assert not [name for name in env if "PGBOUNCER" in name]
    assert "MIF_DB_PGBOUNCER" not in config_env(), "the Job shares mif-config: set it per service Deployment"


@pytest.mark.parametrize("svc", ALL_SERVICES, ids=lambda s: s.name)
def test_the_k8s_settings_give_an_engine_without_statement_caches(svc: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Deployment's variables, read by the service's own settings: PgBouncer on, statement caches off,
    LISTEN on PostgreSQL's address (catches a misspelt variable, which settings would silently ignore)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    from mif_common import db

    config = config_env()
    values = config | {f"MIF_{s.name.upper()}_DB_PASSWORD": "pw" for s in ALL_SERVICES}
    for entry in deployments()[svc.name]["spec"]["template"]["spec"]["containers"][0]["env"]:
        if "value" in entry:
            values[entry["name"]] = render(entry["value"], values)
    for name, value in values.items():
        if name.startswith("MIF_"):
            monkeypatch.setenv(name, value)
    settings = service_settings_class(svc.name)()
    assert settings.db_pgbouncer is True
    assert make_url(settings.database_url).host == config["MIF_PGBOUNCER_HOST"]
    assert make_url(settings.direct_database_url).host == config["MIF_DB_HOST"]
    captured: dict[str, Any] = {}

    def capture(url: Any, **kw: Any) -> Any:
        captured.update(kw)
        return create_async_engine(url, **kw)

    monkeypatch.setattr(db, "create_async_engine", capture)
    db.service_engine(settings)  # never connected: nothing to dispose
    connect_args = captured["connect_args"]
    assert connect_args["statement_cache_size"] == 0  # asyncpg's
    assert connect_args["prepared_statement_cache_size"] == 0  # SQLAlchemy's
    assert "search_path" not in connect_args["server_settings"]  # PgBouncer refuses it; the role's default


def service_settings_class(name: str) -> Any:
    from mif_common.config import ServiceSettings

    module = importlib.import_module(f"mif_{name}.config")
    (cls,) = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, ServiceSettings) and v.service_name == name
    ]
    return cls


def connection_budget(objects: tuple[dict[str, Any], ...]) -> dict[str, int]:
    """At the most replicas the manifests allow (HPA maxima): PostgreSQL connections of the PgBouncer pods,
    the services' LISTEN connections (straight to PostgreSQL), and client connections to PgBouncer."""
    ini = pgbouncer_ini()["pgbouncer"]
    hpa_max = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]["maxReplicas"]
        for h in of_kind("HorizontalPodAutoscaler", objects)
    }
    replicas = {
        d["metadata"]["name"]: hpa_max.get(d["metadata"]["name"], d["spec"].get("replicas", 1))
        for d in of_kind("Deployment", objects)
    }
    budget = {"pgbouncer_to_postgres": replicas[PGBOUNCER] * int(ini["max_db_connections"]), "listen": 0, "clients": 0}
    for svc in ALL_SERVICES:
        cls = service_settings_class(svc.name)
        pool = cls.model_fields["db_pool_size"].default + cls.model_fields["db_max_overflow"].default
        budget["listen"] += replicas[svc.name] * cls.listen_connections
        budget["clients"] += replicas[svc.name] * pool
    for name in WORKERS:  # their pool size is set in their Deployment
        deployment = next(d for d in of_kind("Deployment", objects) if d["metadata"]["name"] == name)
        env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        size = next(int(v) for k, v in env.items() if k.endswith("_DB_POOL_SIZE") and v is not None)
        budget["clients"] += replicas[name] * size
    return budget


def test_the_base_stays_within_postgresqls_connections() -> None:
    """PostgreSQL sees PgBouncer's server connections and the LISTEN connections, whatever the replicas of
    the services (their pools are PgBouncer's clients); one PgBouncer pod takes every client when the
    other is down; each service's role gets its default_pool_size within max_db_connections."""
    ini = pgbouncer_ini()["pgbouncer"]
    budget = connection_budget(base_objects())
    assert budget["pgbouncer_to_postgres"] + budget["listen"] <= POSTGRES_CONNECTION_BUDGET, budget
    assert budget["clients"] <= int(ini["max_client_conn"]), budget
    assert int(ini["default_pool_size"]) * len(ALL_SERVICES) <= int(ini["max_db_connections"])


# ------------------------------------------------------------------------- kustomize (where available)

KUBECTL = shutil.which("kubectl")


@cache
def kustomize_build(target: str) -> tuple[dict[str, Any], ...]:
    assert KUBECTL is not None
    result = subprocess.run([KUBECTL, "kustomize", str(K8S / target)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (with its built-in kustomize) is not installed")
@pytest.mark.parametrize("target", ["base", "overlays/dev", "overlays/prod"])
def test_kustomize_builds_a_consistent_suite(target: str) -> None:
    objects = kustomize_build(target)
    rendered_deployments = of_kind("Deployment", objects)
    assert {d["metadata"]["name"] for d in rendered_deployments} == {*APPS, *WORKERS, PGBOUNCER}
    pdbs = of_kind("PodDisruptionBudget", objects)
    for deployment in rendered_deployments:
        assert sum(selects(p["spec"]["selector"], pod_labels(deployment)) for p in pdbs) == 1
    namespaces = {doc["metadata"]["name"] for doc in of_kind("Namespace", objects)}
    assert len(namespaces) == 1
    for doc in objects:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") in namespaces, (doc["kind"], doc["metadata"]["name"])
    configmaps = {doc["metadata"]["name"] for doc in of_kind("ConfigMap", objects)}
    secrets = {doc["metadata"]["name"] for doc in of_kind("Secret", objects)}
    images = set()
    for doc in [*rendered_deployments, *of_kind("Job", objects)]:
        spec = pod_spec(doc)
        assert spec is not None
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            if doc["metadata"]["name"] != PGBOUNCER:  # its own pinned image (test_pgbouncer_...)
                images.add(container["image"])
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in configmaps
            if target != "overlays/prod":  # prod takes its Secrets from outside the repository
                for entry in container.get("env", []):
                    ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
                    if ref:
                        assert ref["name"] in secrets
    assert len(images) == 1, images
    image = images.pop()
    assert image.rsplit("/", 1)[-1].startswith("mif-suite:") and not image.endswith(":latest"), image
    if target == "overlays/prod":
        assert not secrets, "the prod overlay must not ship the placeholder Secrets"
        assert "/" in image, "prod pulls from a registry"
        config = next(d for d in of_kind("ConfigMap", objects) if d["metadata"]["name"].startswith("mif-config"))
        assert json.loads(config["data"]["MIF_GATEWAY_UPSTREAMS"]) == EXPECTED_UPSTREAMS
    if target == "overlays/dev":
        auth = next(d for d in rendered_deployments if d["metadata"]["name"] == "auth")
        env = {e["name"] for e in auth["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert "MIF_AUTH_SIGNING_KEY_FILE" not in env, "dev generates its signing key"


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (with its built-in kustomize) is not installed")
@pytest.mark.parametrize("target", ["overlays/dev", "overlays/prod"])
def test_each_overlay_stays_within_postgresqls_connections(target: str) -> None:
    ini = pgbouncer_ini()["pgbouncer"]
    budget = connection_budget(kustomize_build(target))
    assert budget["pgbouncer_to_postgres"] + budget["listen"] <= POSTGRES_CONNECTION_BUDGET, budget
    assert budget["clients"] <= int(ini["max_client_conn"]), budget

"""Static checks of the docker-compose deployment (Docker cannot run here, so we parse): every service's image,
command, health check and dependencies, the one-shot Temporal schema, namespace and search-attribute jobs in the
samples-server style (no `auto-setup` image), the sandbox gateway as its own service, and the start order."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from api.routes.webhooks import router as webhooks_router
from starter.temporal_setup import type_name
from contracts.flows import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


EXPECTED_SEARCH_ATTRIBUTES = {key.name: type_name(key) for key in SEARCH_ATTRIBUTES}

# Long-running services: restarted by Docker, each with a health check.
LONG_RUNNING = {"postgresql", "temporal", "temporal-ui", "mailpit", "gateway", "billing-worker", "billing-api",
                "prometheus"}
# One-shot jobs: run to completion on every `up`, never restarted, waited for with service_completed_successfully.
ONE_SHOT = {"billing-databases", "temporal-schema", "temporal-create-namespace", "temporal-search-attributes",
            "billing-migrate"}
BILLING_IMAGE_SERVICES = ["billing-migrate", "gateway", "billing-worker", "billing-api"]
HEALTHY, DONE = "service_healthy", "service_completed_successfully"
# The start order, edge by edge: who waits for whom, and for what.
EXPECTED_DEPENDS_ON = {
    "postgresql": {},
    "billing-databases": {"postgresql": HEALTHY},
    "temporal-schema": {"postgresql": HEALTHY},
    "temporal": {"temporal-schema": DONE},
    "temporal-create-namespace": {"temporal": HEALTHY},
    "temporal-search-attributes": {"temporal-create-namespace": DONE},
    "temporal-ui": {"temporal": HEALTHY, "temporal-create-namespace": DONE},
    "mailpit": {},
    "billing-migrate": {"billing-databases": DONE},
    "gateway": {"billing-databases": DONE},
    "billing-worker": {"temporal": HEALTHY, "temporal-search-attributes": DONE, "billing-migrate": DONE,
                       "gateway": HEALTHY, "mailpit": HEALTHY},
    "billing-api": {"temporal": HEALTHY, "temporal-search-attributes": DONE, "billing-migrate": DONE,
                    "gateway": HEALTHY},
    "prometheus": {"billing-api": HEALTHY},
}
TEMPORAL_VERSION = r"1\.(29|[3-9]\d)\.\d+"  # >= 1.29: Worker Deployment versioning (TEMPORAL-NOTES.md)
TEMPORAL_ADDRESS = "temporal:7233"


@pytest.fixture(scope="module")
def compose() -> dict:
    assert COMPOSE_FILE.is_file(), "docker-compose.yml is missing"
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose) -> dict:
    services = compose.get("services")
    assert isinstance(services, dict) and services
    return services


# ---------------------------------------------------------------- helpers


def env_of(service: dict) -> dict[str, str]:
    """`environment:` as a dict, whether written as a mapping or a list of KEY=VALUE."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def depends_on_of(service: dict) -> dict[str, str]:
    """`depends_on:` as {target: condition}; the short list form means service_started."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def command_of(service: dict) -> list[str]:
    """entrypoint + command as one argument list (an exec-form list, or a string split on whitespace)."""
    parts: list[str] = []
    for key in ("entrypoint", "command"):
        value = service.get(key)
        if isinstance(value, list):
            parts.extend(str(v) for v in value)
        elif value is not None:
            parts.extend(str(value).split())
    return parts


def healthcheck_text(service: dict) -> str:
    test = (service.get("healthcheck") or {}).get("test") or []
    return " ".join(test) if isinstance(test, list) else str(test)


def split_image(image: str) -> tuple[str, str | None]:
    """('repo', 'tag') -- the tag is None when the reference has no tag."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, digest
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:  # no colon, or the colon belonged to a registry host:port
        return image, None
    return name, tag


def published_ports(service: dict) -> list[tuple[str, int, int, str]]:
    """(host_ip, host_port, container_port, protocol) for every published port."""
    result = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):  # long syntax
            if entry.get("published") is None:
                continue
            result.append(
                (
                    str(entry.get("host_ip", "")),
                    int(entry["published"]),
                    int(entry["target"]),
                    entry.get("protocol", "tcp"),
                )
            )
            continue
        spec, _, proto = str(entry).partition("/")
        fields = spec.rsplit(":", 2)
        if len(fields) == 1:  # container port only: random host port, nothing published
            continue
        host_ip = fields[0] if len(fields) == 3 else ""
        assert "-" not in fields[-2], f"port ranges are not used here: {entry!r}"
        result.append((host_ip, int(fields[-2]), int(fields[-1]), proto or "tcp"))
    return result


def bind_mounts(service: dict) -> dict[str, Path]:
    """{container path: file or folder of this repository} for every bind mount of the service."""
    mounts = {}
    for volume in service.get("volumes") or []:
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = ROOT / source
    return mounts


def mounted_script(service: dict) -> str:
    """The text of the repository file a one-shot job runs (the last argument of its command, bind-mounted)."""
    path = command_of(service)[-1]
    local = bind_mounts(service).get(path)
    assert local is not None, f"{path} is not mounted from the repository"
    assert local.resolve().is_relative_to(ROOT / "deploy"), local
    return local.read_text()


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def api_port(services: dict) -> int:
    return int(option(command_of(services["billing-api"]), "--port"))


def gateway_port(services: dict) -> int:
    return int(option(command_of(services["gateway"]), "--port"))


# ---------------------------------------------------------------- top level


def test_compose_spec_without_version_key(compose):
    assert "version" not in compose


def test_services_are_exactly_the_known_ones(services):
    assert set(services) == LONG_RUNNING | ONE_SHOT, "a service was added or removed: update the checks below"


def test_every_image_is_pinned(services):
    for name, service in services.items():
        assert "image" in service or "build" in service, f"{name} has neither image nor build"
        if "image" not in service:
            continue
        repo, tag = split_image(service["image"])
        assert tag, f"{name}: image {service['image']!r} has no tag"
        assert tag != "latest", f"{name}: image {service['image']!r} uses latest"
        assert "$" not in service["image"], f"{name}: image tag must be a literal"


def test_no_auto_setup_image_anywhere(services):
    """temporalio/auto-setup (and the archived temporalio/docker-compose) are for development only."""
    assert "auto-setup" not in COMPOSE_FILE.read_text()
    for name, service in services.items():
        repo, _ = split_image(service.get("image", ""))
        assert repo not in {"temporalio/auto-setup", "temporalite"}, name


def test_no_unescaped_dollar_signs():
    """Compose interpolates `$VAR`; shell variables in commands must be written `$$VAR`."""
    text = COMPOSE_FILE.read_text().replace("$$", "")
    assert "$" not in text, "unescaped `$` in docker-compose.yml (use `$$` for shell variables)"


def test_single_network_shared_by_all_services(compose, services):
    networks = compose.get("networks") or {}
    assert len(networks) == 1, networks
    (network,) = networks
    for name, service in services.items():
        assert service.get("networks") == [network], f"{name} is not on the {network} network"


def test_named_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    assert declared, "expected named volumes"
    used = set()
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":", 1)[0]
            if source.startswith((".", "/", "~")):  # bind mount
                if source.startswith("."):
                    assert (ROOT / source).exists(), f"{name}: bind mount {source} does not exist"
                continue
            assert source in declared, f"{name}: volume {source} is not declared"
            used.add(source)
    assert used == declared, f"unused volumes: {sorted(declared - used)}"


# ---------------------------------------------------------------- start order and lifecycles


def test_dependencies_are_the_start_order(services):
    for name, service in services.items():
        assert depends_on_of(service) == EXPECTED_DEPENDS_ON[name], name


def test_long_running_services_restart_and_have_health_checks(services):
    for name in LONG_RUNNING:
        service = services[name]
        assert service.get("restart") == "unless-stopped", name
        check = service.get("healthcheck") or {}
        assert check.get("test") and check["test"][0] in {"CMD", "CMD-SHELL"}, f"{name} has no health check"
        assert not check.get("disable"), name
        assert check.get("interval") and check.get("retries"), name


def test_one_shot_jobs_run_once_and_are_waited_for(services):
    waited_for = {target for s in services.values() for target, cond in depends_on_of(s).items() if cond == DONE}
    assert waited_for == ONE_SHOT
    for name in ONE_SHOT:
        assert services[name].get("restart") == "no", f"{name} must not restart (its dependants wait for its exit)"
        assert "healthcheck" not in services[name], name


def test_depends_on_targets_exist_with_valid_conditions(services):
    for name, service in services.items():
        for target, condition in depends_on_of(service).items():
            assert target in services and target != name, f"{name} depends on {target}"
            if condition == HEALTHY:
                assert target in LONG_RUNNING and services[target].get("healthcheck", {}).get("test"), (name, target)
            else:
                assert condition == DONE and target in ONE_SHOT, (name, target, condition)


def test_depends_on_graph_is_acyclic(services):
    graph = {name: set(depends_on_of(svc)) for name, svc in services.items()}
    done: set[str] = set()

    def visit(node: str, stack: tuple[str, ...]) -> None:
        assert node not in stack, f"dependency cycle: {' -> '.join(stack + (node,))}"
        if node in done:
            return
        for dep in graph.get(node, ()):
            visit(dep, stack + (node,))
        done.add(node)

    for name in graph:
        visit(name, ())


def test_nothing_of_ours_starts_before_temporal_is_set_up(services):
    """Transitively: the schema job before the server, the namespace and search attributes before any worker or API."""
    def upstream(name: str) -> set[str]:
        found: set[str] = set()
        for dep in depends_on_of(services[name]):
            found |= {dep} | upstream(dep)
        return found

    assert "temporal-schema" in upstream("temporal")
    for name in ("billing-worker", "billing-api"):
        assert {"temporal-schema", "temporal-create-namespace", "temporal-search-attributes", "billing-migrate",
                "billing-databases", "gateway"} <= upstream(name), name
    assert {"billing-databases"} <= upstream("gateway") and "billing-api" not in upstream("gateway")


def test_published_host_ports_are_unique(services):
    seen: dict[tuple[int, str], str] = {}
    for name, service in services.items():
        for _, host_port, _, proto in published_ports(service):
            key = (host_port, proto)
            assert key not in seen, f"host port {host_port}/{proto}: {seen.get(key)} and {name}"
            seen[key] = name
    assert seen, "expected published ports"


# ---------------------------------------------------------------- postgresql


def test_postgresql(services):
    pg = services["postgresql"]
    assert split_image(pg["image"]) == ("postgres", "16")
    env = env_of(pg)
    assert env.get("POSTGRES_USER") and env.get("POSTGRES_PASSWORD")
    assert any(
        not str(v).startswith((".", "/")) and str(v).endswith(":/var/lib/postgresql/data")
        for v in pg.get("volumes", [])
    ), "postgres data must live on a named volume"
    assert command_of(pg)[0] == "postgres"
    assert int(option(command_of(pg), "-c").split("=")[1]) >= 200, "room for scaled workers' connection pools"
    assert "pg_isready" in healthcheck_text(pg) and "-h 127.0.0.1" in healthcheck_text(pg)


def test_billing_databases_job_creates_both_databases(services):
    job = services["billing-databases"]
    assert split_image(job["image"]) == split_image(services["postgresql"]["image"])
    command = command_of(job)
    assert command[0] == "psql" and option(command, "-h") == "postgresql"
    assert option(command, "-U") == env_of(services["postgresql"])["POSTGRES_USER"]
    assert env_of(job)["PGPASSWORD"] == env_of(services["postgresql"])["POSTGRES_PASSWORD"]
    sql = mounted_script(job)
    assert "ON_ERROR_STOP" in sql
    for name, url in (("billing-worker", "DATABASE_URL"), ("gateway", "BILLING_GATEWAY_DATABASE_URL")):
        parts = urlsplit(env_of(services[name])[url])
        database, role = parts.path.lstrip("/"), parts.username
        # Idempotent: each CREATE runs only when the object is missing (psql's \gexec), so re-runs succeed.
        assert re.search(rf"'CREATE ROLE {role} LOGIN' WHERE NOT EXISTS", sql), role
        assert f"ALTER ROLE {role} WITH LOGIN PASSWORD '{parts.password}'" in sql
        assert re.search(rf"'CREATE DATABASE {database} OWNER {role}'\s+WHERE NOT EXISTS", sql), database
    assert sql.count("\\gexec") == 4


# ---------------------------------------------------------------- temporal


def test_schema_job_sets_up_both_databases_before_the_server(services):
    job = services["temporal-schema"]
    repo, tag = split_image(job["image"])
    assert repo == "temporalio/admin-tools" and tag == split_image(services["temporal"]["image"])[1]
    assert command_of(job)[0] == "/bin/sh"
    env = env_of(job)
    assert (env["DB"], env["POSTGRES_SEEDS"], env["POSTGRES_USER"]) == ("postgres12", "postgresql", "temporal")
    assert env["SQL_PASSWORD"] == env_of(services["postgresql"])["POSTGRES_PASSWORD"]
    script = mounted_script(job)
    assert script.startswith("#!/bin/sh") and "set -eu" in script
    assert "temporal-sql-tool" in script
    for step in ("create-database", "setup-schema -v 0.0", "update-schema -d"):
        assert step in script, step
    # The loop runs the three steps for the default store and the visibility store, each from its versioned folder.
    assert '"${DBNAME:-temporal}:temporal"' in script
    assert '"${VISIBILITY_DBNAME:-temporal_visibility}:visibility"' in script
    assert "/etc/temporal/schema/postgresql/v12" in script and '"$SCHEMA_DIR/$schema/versioned"' in script
    assert depends_on_of(services["temporal"]) == {"temporal-schema": DONE}


def test_temporal_server_on_postgres(services):
    temporal = services["temporal"]
    repo, tag = split_image(temporal["image"])
    assert repo == "temporalio/server" and re.fullmatch(TEMPORAL_VERSION, tag), temporal["image"]
    assert "command" not in temporal and "entrypoint" not in temporal, "the image's own `temporal-server start`"

    env = env_of(temporal)
    assert env["DB"] == "postgres12"
    assert env["DB_PORT"] == "5432"
    assert env["POSTGRES_SEEDS"] == "postgresql"
    pg_env = env_of(services["postgresql"])
    assert env["POSTGRES_USER"] == pg_env["POSTGRES_USER"]
    assert env["POSTGRES_PWD"] == pg_env["POSTGRES_PASSWORD"]
    assert env["BIND_ON_IP"] == "0.0.0.0", "reachable from the other containers (the template's default is loopback)"
    assert "DBNAME" not in env and "VISIBILITY_DBNAME" not in env, "the schema job's: temporal, temporal_visibility"
    for key in ("DB", "DB_PORT", "POSTGRES_SEEDS", "POSTGRES_USER"):
        assert env_of(services["temporal-schema"])[key] == env[key], key

    assert any(p[1:3] == (7233, 7233) for p in published_ports(temporal))
    assert healthcheck_text(temporal) == "CMD nc -z 127.0.0.1 7233"


def test_temporal_dynamic_config_is_mounted_from_deploy(services):
    temporal = services["temporal"]
    path = env_of(temporal)["DYNAMIC_CONFIG_FILE_PATH"]
    in_container = path if path.startswith("/") else f"/etc/temporal/{path}"  # the image's working directory
    for mount in temporal.get("volumes", []):
        source, target = mount.split(":")[:2]
        if in_container == target or in_container.startswith(target.rstrip("/") + "/"):
            local = ROOT / source / Path(in_container).relative_to(target)
            break
    else:
        pytest.fail(f"{in_container} is not mounted into the temporal service")
    assert local.resolve().is_relative_to(ROOT / "deploy")
    assert local.is_file(), f"{local} does not exist"
    assert isinstance(yaml.safe_load(local.read_text()), dict)


@pytest.mark.parametrize("name", ["temporal-create-namespace", "temporal-search-attributes"])
def test_admin_jobs_match_the_server_version(services, name):
    repo, tag = split_image(services[name]["image"])
    assert repo == "temporalio/admin-tools" and tag == split_image(services["temporal"]["image"])[1]
    assert command_of(services[name])[0] == "/bin/sh"
    assert env_of(services[name])["TEMPORAL_ADDRESS"] == TEMPORAL_ADDRESS
    assert env_of(services[name])["DEFAULT_NAMESPACE"] == "default"


def test_namespace_job_waits_for_serving_then_creates_the_namespace(services):
    job = services["temporal-create-namespace"]
    script = mounted_script(job)
    assert script.startswith("#!/bin/sh") and "set -eu" in script
    # The server's own check sees only an open port; the job waits for the gRPC health check itself.
    assert 'until temporal operator cluster health --address "$TEMPORAL_ADDRESS"; do' in script
    assert "temporal operator namespace describe" in script and "temporal operator namespace create" in script
    assert '--retention "$RETENTION"' in script
    assert re.fullmatch(r"\d+d", env_of(job)["DEFAULT_NAMESPACE_RETENTION"])


def test_search_attribute_job_registers_exactly_ours(services):
    script = mounted_script(services["temporal-search-attributes"])
    assert script.startswith("#!/bin/sh") and "set -eu" in script
    assert 'temporal operator search-attribute create --namespace "$NAMESPACE" --address "$TEMPORAL_ADDRESS"' in script
    registered = dict(re.findall(r"^register --name\s+(\w+)\s+--type\s+(\w+)$", script, re.M))
    assert registered == EXPECTED_SEARCH_ATTRIBUTES
    assert "already exists" in script, "re-running the job must tolerate existing attributes"
    assert "different type" in script, "an attribute of another type must fail the job"


def test_ui_decodes_through_the_codec_server(services):
    ui = services["temporal-ui"]
    repo, tag = split_image(ui["image"])
    assert repo == "temporalio/ui" and re.fullmatch(r"2\.(3[89]|[4-9]\d)\.\d+", tag), "UI >= 2.38 (versioning)"
    env = env_of(ui)
    assert env["TEMPORAL_ADDRESS"] == TEMPORAL_ADDRESS
    (ui_host_port,) = [p[1] for p in published_ports(ui) if p[2] == 8080]
    assert env["TEMPORAL_CORS_ORIGINS"] == f"http://localhost:{ui_host_port}"
    # The browser calls the codec server itself: the API's host port, path /codec, and the API lets the UI's origin in.
    codec = urlsplit(env["TEMPORAL_CODEC_ENDPOINT"])
    api_host_port = {p[2]: p[1] for p in published_ports(services["billing-api"])}[api_port(services)]
    assert (codec.hostname, codec.port, codec.path) == ("localhost", api_host_port, "/codec")
    origins = env_of(services["billing-api"])["BILLING_CODEC_CORS_ORIGINS"].split(",")
    assert f"http://localhost:{ui_host_port}" in origins
    assert healthcheck_text(ui) == "CMD wget -q -O /dev/null http://127.0.0.1:8080/healthz"


# ---------------------------------------------------------------- billing services


@pytest.mark.parametrize("name", BILLING_IMAGE_SERVICES)
def test_billing_services_use_our_image(services, name):
    service = services[name]
    build = service.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    assert context in {".", "./"}, f"{name} must be built from this repository"
    if isinstance(build, dict):
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile"
    assert service["image"] == "billing-engine:local"


@pytest.mark.parametrize("name", ["billing-worker", "billing-migrate", "billing-api"])
def test_billing_services_share_backends(services, name):
    env = env_of(services[name])
    url = urlsplit(env["DATABASE_URL"])
    assert url.scheme == "postgresql+psycopg"
    assert url.hostname == "postgresql" and url.hostname in services
    assert (url.port or 5432) == 5432
    assert url.path == "/billing"
    assert env["TEMPORAL_ADDRESS"] == TEMPORAL_ADDRESS
    assert env.get("TEMPORAL_NAMESPACE", "default") == "default"
    assert env["SMTP_HOST"] == "mailpit" and env["SMTP_HOST"] in services
    assert env["SMTP_PORT"] == "1025"
    # M3: with BILLING_GATEWAY_URL set, charges go to the gateway service, never to an in-process sandbox.
    assert env["BILLING_GATEWAY_URL"] == f"http://gateway:{gateway_port(services)}"


@pytest.mark.parametrize("name", ["billing-worker", "billing-migrate", "billing-api"])
def test_billing_services_share_the_codec_keys(compose, services, name):
    """J1: one key file for every process that encrypts or decrypts payloads, from a compose secret (never a
    per-container file, which would give each worker its own key)."""
    service = services[name]
    assert env_of(service)["BILLING_CODEC_KEY_FILE"] == "/run/secrets/codec-keys"
    assert "codec-keys" in service.get("secrets", [])
    assert compose["secrets"]["codec-keys"]["file"] == "./deploy/secrets/codec-keys"
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "deploy/secrets/" in ignored, "keys must never be committed"


def test_migrate_job(services):
    job = services["billing-migrate"]
    assert command_of(job) == ["billing", "db", "upgrade"]
    assert "healthcheck" not in job


def test_gateway_service(services):
    """The sandbox gateway on its own ledger database, reachable by the worker and the API, sending webhooks to the
    API's endpoint; its webhook secret comes from the same git-ignored file as the API's (I5)."""
    gateway = services["gateway"]
    command = command_of(gateway)
    assert command[:3] == ["billing", "gateway", "serve"] and option(command, "--host") == "0.0.0.0"
    env = env_of(gateway)
    url = urlsplit(env["BILLING_GATEWAY_DATABASE_URL"])
    assert (url.scheme, url.hostname, url.path) == ("postgresql+psycopg", "postgresql", "/gateway")
    assert url.path != urlsplit(env_of(services["billing-worker"])["DATABASE_URL"]).path, "its own database"
    assert "DATABASE_URL" not in env and "BILLING_GATEWAY_URL" not in env
    hook = urlsplit(env["BILLING_GATEWAY_WEBHOOK_URL"])
    assert (hook.hostname, hook.port) == ("billing-api", api_port(services))
    assert hook.path in {f"/v1{route.path}" for route in webhooks_router.routes}
    assert env["BILLING_GATEWAY_FAULTS"] == "", "no injected faults in the deployment"
    assert "BILLING_WEBHOOK_SECRET" not in env and "BILLING_WEBHOOK_SECRET" not in env_of(services["billing-api"])
    assert gateway["env_file"] == services["billing-api"]["env_file"] == ["./deploy/secrets/webhook.env"]
    assert not gateway.get("secrets"), "the gateway holds no payload keys"
    assert not published_ports(gateway), "reached by the other services only"
    assert f"http://127.0.0.1:{gateway_port(services)}/health" in healthcheck_text(gateway)


def test_worker(services):
    worker = services["billing-worker"]
    assert command_of(worker) == ["python", "worker.py"]
    assert "LOG_LEVEL" in env_of(worker)
    assert not worker.get("container_name"), "container_name prevents scaling the worker"
    assert not published_ports(worker), "replicated workers must not publish host ports"
    assert worker["deploy"]["replicas"] >= 2
    # Healthy once the worker runs: its SDK exporter (on BILLING_SDK_METRICS_ADDRESS) counts a started worker.
    port = env_of(worker)["BILLING_SDK_METRICS_ADDRESS"].rsplit(":", 1)[1]
    check = healthcheck_text(worker)
    assert f"http://127.0.0.1:{port}/metrics" in check and "temporal_worker_start" in check


def test_api(services):
    """I1: the HTTP API as its own service, on the same backends, answering its health check on its port."""
    api = services["billing-api"]
    command = command_of(api)
    assert command[:2] == ["billing", "serve-api"] and option(command, "--host") == "0.0.0.0"
    port = api_port(services)
    assert any(p[1:3] == (8000, port) for p in published_ports(api))
    assert f"http://127.0.0.1:{port}/healthz" in healthcheck_text(api)


def test_mailpit(services):
    mailpit = services["mailpit"]
    repo, tag = split_image(mailpit["image"])
    assert repo == "axllent/mailpit" and re.fullmatch(r"v\d+\.\d+(\.\d+)?", tag)
    ports = {p[2]: p[1] for p in published_ports(mailpit)}
    assert ports.get(1025) == 1025 and ports.get(8025) == 8025
    assert healthcheck_text(mailpit) == "CMD /mailpit readyz"


def test_prometheus(services):
    prometheus = services["prometheus"]
    repo, tag = split_image(prometheus["image"])
    assert repo == "prom/prometheus" and re.fullmatch(r"v\d+\.\d+\.\d+", tag)
    assert "--config.file=/etc/prometheus/prometheus.yml" in command_of(prometheus)
    assert "http://127.0.0.1:9090/-/ready" in healthcheck_text(prometheus)


def test_readme_says_how_to_scale_workers():
    readme = (ROOT / "README.md").read_text()
    assert "docker compose up -d --scale billing-worker=N" in readme


# ---------------------------------------------------------------- image


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text()
    text = re.sub(r"\\\n", " ", text)  # join continuation lines
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def test_dockerfile_installs_project():
    assert DOCKERFILE.is_file(), "Dockerfile is missing"
    instructions = dockerfile_instructions()
    bases = [rest.split()[0] for kw, rest in instructions if kw == "FROM"]
    assert bases and all(b.startswith("python:3.11") for b in bases), bases
    runs = " ".join(rest for kw, rest in instructions if kw == "RUN")
    assert re.search(r"pip install (--\S+ )*\.(\s|$)", runs), "the project is not installed"
    assert "[test]" not in runs, "test extras must not be installed in the image"
    users = [rest for kw, rest in instructions if kw == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "image must run as non-root"
    cmd = [rest for kw, rest in instructions if kw == "CMD"]
    assert cmd and "worker.py" in cmd[-1]


def test_dockerignore_excludes_local_state():
    assert DOCKERIGNORE.is_file()
    entries = {
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".venv", "data", ".git"):
        assert required in entries, f".dockerignore must exclude {required}"
    assert "__pycache__" in entries or "**/__pycache__" in entries
    assert "tests" in entries or "tests/histories" in entries
    for needed in ("pyproject.toml", "worker.py", "billing", "workflows", "activities", "starter"):
        assert needed not in entries, f".dockerignore must not exclude {needed}"

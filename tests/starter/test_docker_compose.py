"""Static checks of the docker-compose deployment (Docker cannot run here, so we parse)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from starter.temporal_setup import type_name
from contracts.flows import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


EXPECTED_SEARCH_ATTRIBUTES = {key.name: type_name(key) for key in SEARCH_ATTRIBUTES}

REQUIRED_SERVICES = {
    "postgresql",
    "temporal",
    "temporal-admin-tools",
    "temporal-ui",
    "mailpit",
    "billing-migrate",
    "billing-worker",
    "billing-api",
}
VALID_DEPENDS_ON_CONDITIONS = {
    "service_started",
    "service_healthy",
    "service_completed_successfully",
}
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


def command_text(service: dict) -> str:
    parts = []
    for key in ("entrypoint", "command"):
        value = service.get(key)
        if isinstance(value, list):
            parts.extend(str(v) for v in value)
        elif value is not None:
            parts.append(str(value))
    return "\n".join(parts)


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


# ---------------------------------------------------------------- top level


def test_compose_spec_without_version_key(compose):
    assert "version" not in compose


def test_required_services_exist(services):
    missing = REQUIRED_SERVICES - services.keys()
    assert not missing, f"missing services: {sorted(missing)}"


def test_every_image_is_pinned(services):
    for name, service in services.items():
        assert "image" in service or "build" in service, f"{name} has neither image nor build"
        if "image" not in service:
            continue
        repo, tag = split_image(service["image"])
        assert tag, f"{name}: image {service['image']!r} has no tag"
        assert tag != "latest", f"{name}: image {service['image']!r} uses latest"
        assert "$" not in service["image"], f"{name}: image tag must be a literal"


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


# ---------------------------------------------------------------- postgresql


def test_postgresql(services):
    pg = services["postgresql"]
    repo, tag = split_image(pg["image"])
    assert (repo, tag) == ("postgres", "16")
    env = env_of(pg)
    assert env.get("POSTGRES_USER") and env.get("POSTGRES_PASSWORD")
    assert any(
        not str(v).startswith((".", "/")) and str(v).endswith(":/var/lib/postgresql/data")
        for v in pg.get("volumes", [])
    ), "postgres data must live on a named volume"
    test = pg.get("healthcheck", {}).get("test")
    assert test and "pg_isready" in " ".join(test if isinstance(test, list) else [test])


def test_postgresql_init_script_creates_billing_database(services):
    mounts = [v for v in services["postgresql"].get("volumes", []) if isinstance(v, str)]
    initdb = [m for m in mounts if m.split(":")[1] == "/docker-entrypoint-initdb.d"]
    assert initdb, "no init scripts mounted into /docker-entrypoint-initdb.d"
    source = ROOT / initdb[0].split(":")[0]
    assert source.resolve().is_relative_to(ROOT / "deploy")
    scripts = sorted(p for p in source.iterdir() if p.suffix in {".sql", ".sh"})
    assert scripts, f"no init scripts in {source}"
    sql = "\n".join(p.read_text() for p in scripts)
    assert re.search(r"CREATE\s+DATABASE\s+\"?billing\"?", sql, re.IGNORECASE)


# ---------------------------------------------------------------- temporal


def test_temporal_server_on_postgres(services):
    temporal = services["temporal"]
    repo, tag = split_image(temporal["image"])
    assert repo == "temporalio/auto-setup"
    assert re.fullmatch(r"1\.[23]\d\.\d+", tag), f"unexpected auto-setup tag {tag}"

    env = env_of(temporal)
    assert env["DB"] == "postgres12"
    assert env["DB_PORT"] == "5432"
    assert env["POSTGRES_SEEDS"] == "postgresql"
    assert env["POSTGRES_SEEDS"] in services
    pg_env = env_of(services["postgresql"])
    assert env["POSTGRES_USER"] == pg_env["POSTGRES_USER"]
    assert env["POSTGRES_PWD"] == pg_env["POSTGRES_PASSWORD"]

    assert depends_on_of(temporal).get("postgresql") == "service_healthy"
    assert any(p[1:3] == (7233, 7233) for p in published_ports(temporal))
    assert temporal.get("healthcheck", {}).get("test"), "temporal needs a healthcheck"


def test_temporal_dynamic_config_is_mounted_from_deploy(services):
    temporal = services["temporal"]
    path = env_of(temporal)["DYNAMIC_CONFIG_FILE_PATH"]
    in_container = path if path.startswith("/") else f"/etc/temporal/{path}"
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


def test_admin_tools_matches_server_version(services):
    _, server_tag = split_image(services["temporal"]["image"])
    repo, tag = split_image(services["temporal-admin-tools"]["image"])
    assert repo == "temporalio/admin-tools"
    assert tag == server_tag or tag.startswith(f"{server_tag}-")


def test_admin_tools_registers_exactly_the_search_attributes(services):
    job = services["temporal-admin-tools"]
    text = command_text(job)
    assert "temporal operator search-attribute create" in text
    assert "--namespace default" in text
    assert f"--address {TEMPORAL_ADDRESS}" in text
    registered = dict(re.findall(r"--name\s+(\w+)\s+--type\s+(\w+)", text))
    assert registered == EXPECTED_SEARCH_ATTRIBUTES
    assert "already exists" in text, "re-running the job must tolerate existing attributes"
    assert depends_on_of(job).get("temporal") == "service_healthy"
    assert job.get("restart", "no") == "no", "one-shot job must not restart"


def test_ui(services):
    ui = services["temporal-ui"]
    repo, tag = split_image(ui["image"])
    assert repo == "temporalio/ui" and re.fullmatch(r"\d+\.\d+\.\d+", tag)
    env = env_of(ui)
    assert env["TEMPORAL_ADDRESS"] == TEMPORAL_ADDRESS
    assert env.get("TEMPORAL_CORS_ORIGINS")
    assert any(p[1:3] == (8233, 8080) for p in published_ports(ui))


# ---------------------------------------------------------------- billing services


@pytest.mark.parametrize("name", ["billing-worker", "billing-migrate", "billing-api"])
def test_billing_services_use_our_image_and_backends(services, name):
    service = services[name]
    build = service.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    assert context in {".", "./"}, f"{name} must be built from this repository"
    if isinstance(build, dict):
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile"

    env = env_of(service)
    url = urlsplit(env["DATABASE_URL"])
    assert url.scheme == "postgresql+psycopg"
    assert url.hostname == "postgresql" and url.hostname in services
    assert (url.port or 5432) == 5432
    assert url.path == "/billing"
    assert env["TEMPORAL_ADDRESS"] == TEMPORAL_ADDRESS
    assert env.get("TEMPORAL_NAMESPACE", "default") == "default"
    assert env["SMTP_HOST"] == "mailpit" and env["SMTP_HOST"] in services
    assert env["SMTP_PORT"] == "1025"


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


def test_billing_database_credentials_match_init_script(services):
    url = urlsplit(env_of(services["billing-worker"])["DATABASE_URL"])
    sql = "\n".join(p.read_text() for p in (ROOT / "deploy").rglob("*.sql"))
    assert re.search(rf"CREATE\s+(ROLE|USER)\s+\"?{url.username}\"?", sql, re.IGNORECASE)
    assert f"'{url.password}'" in sql


def test_migrate_job(services):
    job = services["billing-migrate"]
    assert command_text(job).split() == ["billing", "db", "upgrade"]
    assert depends_on_of(job).get("postgresql") == "service_healthy"
    assert job.get("restart", "no") == "no"


def test_worker(services):
    worker = services["billing-worker"]
    assert command_text(worker).split() == ["python", "worker.py"]
    assert "LOG_LEVEL" in env_of(worker)
    assert worker.get("restart") == "unless-stopped"
    deps = depends_on_of(worker)
    assert deps.get("temporal") == "service_healthy"
    assert deps.get("billing-migrate") == "service_completed_successfully"
    assert deps.get("temporal-admin-tools") == "service_completed_successfully"
    assert not worker.get("container_name"), "container_name prevents scaling the worker"
    assert not published_ports(worker), "replicated workers must not publish host ports"


def test_api(services):
    """I1: the HTTP API as its own service, on the same backends, answering its health check on 8000."""
    api = services["billing-api"]
    command = command_text(api).split()
    assert command[:2] == ["billing", "serve-api"] and command[command.index("--host") + 1] == "0.0.0.0"
    port = int(command[command.index("--port") + 1])
    assert any(p[1:3] == (8000, port) for p in published_ports(api))
    assert "/healthz" in " ".join(api["healthcheck"]["test"]) and f":{port}/" in " ".join(api["healthcheck"]["test"])
    deps = depends_on_of(api)
    assert deps.get("temporal") == "service_healthy"
    assert deps.get("billing-migrate") == "service_completed_successfully"
    assert api.get("restart") == "unless-stopped"


def test_mailpit(services):
    mailpit = services["mailpit"]
    repo, tag = split_image(mailpit["image"])
    assert repo == "axllent/mailpit" and re.fullmatch(r"v\d+\.\d+(\.\d+)?", tag)
    ports = {p[2]: p[1] for p in published_ports(mailpit)}
    assert ports.get(1025) == 1025 and ports.get(8025) == 8025


# ---------------------------------------------------------------- cross-cutting


def test_depends_on_targets_exist_with_valid_conditions(services):
    for name, service in services.items():
        for target, condition in depends_on_of(service).items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert target != name
            assert condition in VALID_DEPENDS_ON_CONDITIONS, f"{name} -> {target}: {condition}"
            if condition == "service_healthy":
                assert services[target].get("healthcheck", {}).get("test"), (
                    f"{name} waits for {target} to be healthy but it has no healthcheck"
                )
            if condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", (
                    f"{name} waits for {target} to complete but it restarts"
                )


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


def test_published_host_ports_are_unique(services):
    seen: dict[tuple[int, str], str] = {}
    for name, service in services.items():
        for _, host_port, _, proto in published_ports(service):
            key = (host_port, proto)
            assert key not in seen, f"host port {host_port}/{proto}: {seen.get(key)} and {name}"
            seen[key] = name
    assert seen, "expected published ports"


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

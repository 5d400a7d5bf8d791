"""The `billing` console script: simulate scenarios, migrate the database, steer payments."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from pydantic import ValidationError

from billing import config, migrate
from billing.logging import configure_logging

EXIT_INVALID = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="billing", description="Temporal-orchestrated billing engine")
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser("simulate", help="run a scenario on the time-skipping server (SCENARIOS.md)")
    sim.add_argument("file")
    sim.add_argument("--json", action="store_true", help="print the output document as JSON (the default)")
    sim.add_argument("--database-url", help="run against this (empty) database instead of a temporary SQLite file")

    db = commands.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])

    retry = commands.add_parser("retry-payment", help="signal a failed payment to retry (SPEC F3)")
    retry.add_argument("org")
    retry.add_argument("--invoice", default="latest", help="invoice number, or 'latest'")

    charge = commands.add_parser("charge-invoice", help="start the payment workflow of a closed invoice")
    charge.add_argument("invoice")

    settle = commands.add_parser("settle", help="run the month-end settlement of one organization and period")
    settle.add_argument("org")
    settle.add_argument("period", help="YYYY-MM")
    return parser


def _fail(message: str) -> int:
    print(f"billing: error: {message}", file=sys.stderr)
    return EXIT_INVALID


async def _simulate(args: argparse.Namespace) -> int:
    from starter.scenario import ScenarioError, load_scenario
    from starter.simulate import simulate

    try:
        scenario = load_scenario(args.file)
    except ScenarioError as err:
        return _fail(f"invalid scenario: {err}")
    try:
        output = await simulate(scenario, database_url=args.database_url)
    except ValueError as err:
        return _fail(str(err))
    json.dump(output, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


async def _client() -> Any:
    from billing.db import Database
    from billing.gateway import SandboxGateway
    from starter.client import BillingClient
    from worker import connect

    db = Database(config.database_url())
    return BillingClient(await connect(), db, SandboxGateway(db))


async def _run(args: argparse.Namespace) -> int:
    from starter.client import BillingError

    if args.command == "simulate":
        return await _simulate(args)
    if args.command == "db":
        migrate.upgrade(config.database_url())
        return 0
    client = await _client()
    try:
        if args.command == "retry-payment":
            print(await client.retry_payment(args.org, args.invoice, requested_by="cli"))
        elif args.command == "charge-invoice":
            print((await client.charge_invoice(args.invoice)).id)
        elif args.command == "settle":
            print((await client.settle(args.org, args.period)).model_dump_json(indent=2))
    except (BillingError, ValidationError) as err:
        return _fail(str(err))
    return 0


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    configure_logging(os.environ.get("LOG_LEVEL", "WARNING"), stream=sys.stderr)
    from worker import install_runtime

    install_runtime()
    code = asyncio.run(_run(args))
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal core runtime's threads may still hold the GIL machinery at interpreter shutdown;
    # leave without running finalizers once everything is flushed.
    os._exit(code)


if __name__ == "__main__":
    main()

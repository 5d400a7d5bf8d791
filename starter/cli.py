"""The `billing` console script: simulate scenarios, migrate the database, steer payments."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from typing import Any

from pydantic import ValidationError

from billing import config
from billing.logging import configure_logging
from billing.permissions import ApiRole

EXIT_INVALID = 2
# The SDK core warns on every run that the time-skipping server does not advertise this capability
# (heartbeat details kept on activity failure); nothing of ours depends on it.
TEST_SERVER_CAPABILITY_WARNING = "activity_failure_include_heartbeat"


class _TestServerCapabilityWarning(logging.Filter):
    """Demotes the SDK core's warning about the time-skipping server's capabilities to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("temporalio.core") and TEST_SERVER_CAPABILITY_WARNING in record.getMessage():
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="billing", description="Temporal-orchestrated billing engine")
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser("simulate", help="run a scenario on the time-skipping server (SCENARIOS.md)")
    sim.add_argument("file")
    sim.add_argument("--json", action="store_true", help="print the output document as JSON (the default)")
    sim.add_argument("--database-url", help="run against this (empty) database instead of a temporary SQLite file")

    db = commands.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])

    codec = commands.add_parser("codec-key", help="payload encryption keys (SPEC J1)")
    codec.add_argument("action", choices=["new"], help="print a new key line (id:base64), to put first in the "
                                                       "key file or BILLING_CODEC_KEYS")
    codec.add_argument("--id", help="the key's id (default: a random one)")

    serve = commands.add_parser("serve-api", help="run the HTTP API on its own (compose's billing-api service)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=int(os.environ.get("API_PORT", "8000")))

    gateway = commands.add_parser("gateway", help="the sandbox payment gateway as its own HTTP service")
    gateway_commands = gateway.add_subparsers(dest="gateway_command", required=True)
    gateway_serve = gateway_commands.add_parser("serve", help="serve it (ledger: BILLING_GATEWAY_DATABASE_URL; "
                                                "faults: BILLING_GATEWAY_FAULTS; webhooks to BILLING_GATEWAY_WEBHOOK_URL)")
    gateway_serve.add_argument("--host", default="127.0.0.1")
    gateway_serve.add_argument("--port", type=int, default=8099)
    gateway_serve.add_argument("--database-url", help="its ledger database (default: BILLING_GATEWAY_DATABASE_URL, "
                                                      "else sqlite:///data/gateway.db)")

    keys = commands.add_parser("api-key", help="API keys (SPEC I2): create (shown once), list, revoke")
    key_commands = keys.add_subparsers(dest="key_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print it once (only its hash is kept)")
    create.add_argument("--org", help="the organization the key belongs to (not for --role operator)")
    create.add_argument("--role", required=True, choices=[role.value for role in ApiRole])
    create.add_argument("--project", help="the project of a project-owner / project-read-only key")
    create.add_argument("--name", help="who or what uses the key (kept in audits)")
    create.add_argument("--json", action="store_true", help="print id, key, organization and role as JSON")
    key_list = key_commands.add_parser("list", help="list keys (never the keys themselves)")
    key_list.add_argument("--org")
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id (key_…): it stops working at once")
    revoke.add_argument("key_id")

    retry = commands.add_parser("retry-payment", help="signal a failed payment to retry (SPEC F3)")
    retry.add_argument("org")
    retry.add_argument("--invoice", default="latest", help="invoice number, or 'latest'")

    pay_now = commands.add_parser("pay-now", help="PAY NOW: charge the method on file on-session (SPEC G2, E2)")
    pay_now.add_argument("org")
    pay_now.add_argument("invoice", nargs="?", default="latest", help="invoice number, or 'latest'")

    record = commands.add_parser("record-payment", help="record a wire or ACH payment received (SPEC D10)")
    record.add_argument("org")
    record.add_argument("invoice", help="invoice number, or 'latest'")
    record.add_argument("--method", required=True, choices=["wire", "ach"])
    record.add_argument("--amount", required=True, help="in the invoice's currency, e.g. 100.00")
    record.add_argument("--reference", help="the bank's reference of the transfer")

    forgive = commands.add_parser("forgive", help="operator: forgive an unpaid invoice, audited (SPEC D10)")
    forgive.add_argument("org")
    forgive.add_argument("invoice", help="invoice number, or 'latest'")
    forgive.add_argument("--reason", required=True)
    forgive.add_argument("--by", default="cli", help="who forgives (kept in the audit record)")

    refund = commands.add_parser("refund", help="refund an invoice's card/PayPal payment (SPEC D10; not D2's)")
    refund.add_argument("org")
    refund.add_argument("invoice", nargs="?", default="latest", help="invoice number, or 'latest'")

    profile = commands.add_parser("set-billing-profile", help="edit the billing address and tax ID (SPEC A1-A2)")
    profile.add_argument("org")
    profile.add_argument("file", nargs="?", help="a JSON file with the whole billing profile (as in a scenario)")
    for name in ("country", "state", "city", "address-line1", "address-line2", "postal-code", "company-name",
                 "tax-id"):
        profile.add_argument(f"--{name}", help="replaces the value on file" + ("; '' removes it"
                                                                               if name == "tax-id" else ""))
    profile.add_argument("--changed-by", default="cli", help="who made the change (kept in the audit)")

    charge = commands.add_parser("charge-invoice", help="start the payment workflow of a closed invoice")
    charge.add_argument("invoice")

    tax = commands.add_parser("tax", help="tax by region (SPEC C1-C4)")
    tax_commands = tax.add_subparsers(dest="tax_command", required=True)
    tax_quote = tax_commands.add_parser("quote", help="print the tax lines for an amount billed to an address (JSON)")
    tax_quote.add_argument("--country", required=True, help="ISO 3166-1 alpha-2 code of the billing address")
    tax_quote.add_argument("--state", help="US state / Canadian province code (free text elsewhere)")
    tax_quote.add_argument("--tax-id", help="VAT/GST ID of the billing profile")
    tax_quote.add_argument("--product", required=True, choices=["atlas", "flex_consulting"])
    tax_quote.add_argument("--amount", required=True, help="taxable amount, e.g. 1000.00")
    tax_quote.add_argument("--currency", default="USD")
    tax_quote.add_argument("--on", help="the day whose rates apply (YYYY-MM-DD; default today)")
    tax_check = tax_commands.add_parser("check", help="compare the region table's standard rates with the official-source "
                                        "datasets (eu-vat-rates-data today, duty27-eu-vat since 2020); exit 1 if any differs")
    tax_check.add_argument("--table", help="the region table to check (TOML; default the packaged one)")

    apply_code = commands.add_parser("apply-code", help="apply a subscription's activation code (SPEC D2)")
    apply_code.add_argument("org")
    apply_code.add_argument("code")

    reissue = commands.add_parser("reissue-code", help="support: re-issue a lost activation code (SPEC D2)")
    reissue.add_argument("org")

    month_end = commands.add_parser("month-end", help="start every organization's settlement for a period now")
    month_end.add_argument("period", help="YYYY-MM")

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
    except Exception as err:  # noqa: BLE001 (never a traceback)
        return _fail(f"invalid scenario: {_one_line(err)}")
    try:
        output = await simulate(scenario, database_url=args.database_url, gateway_service=True)
    except Exception as err:  # noqa: BLE001 (a public interface: one line naming what failed, never a traceback)
        return _fail(_one_line(err))
    json.dump(output, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _one_line(err: BaseException) -> str:
    """`events[2].invoice (retry_payment for acme at …): organization 'acme' has no invoice 'INV-9'`."""
    from services.client import BillingError

    where = (getattr(err, "__notes__", None) or ["simulation"])[-1]
    message = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if not isinstance(err, (BillingError, ValueError)) or not message:
        message = f"{type(err).__name__}: {message}" if message else type(err).__name__
    return f"{where}: {message}"


def _tax_quote(args: argparse.Namespace) -> int:
    from datetime import date
    from decimal import Decimal, InvalidOperation

    from activities.tax import quote
    from billing.money import UnknownCurrency, format_amount, round_money
    from billing.profiles import TaxAddress
    from billing.tax import OfflineRegistry, Product

    try:
        profile = TaxAddress.model_validate({"country": args.country, "state": args.state or "-",
                                             "tax_id": args.tax_id})
    except ValidationError as err:
        first = err.errors()[0]
        return _fail(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg'].removeprefix('Value error, ')}")
    try:
        amount = round_money(Decimal(args.amount), args.currency.upper())
        if amount < 0:
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        return _fail(f"amount: {args.amount!r} is not a non-negative amount")
    except UnknownCurrency:
        return _fail(f"currency: unknown currency {args.currency!r}")
    try:
        on = date.fromisoformat(args.on) if args.on else date.today()
    except ValueError:
        return _fail(f"on: {args.on!r} is not a date (YYYY-MM-DD)")
    currency = args.currency.upper()
    result = quote(country=profile.country, subdivision=profile.state, tax_id=profile.tax_id,
                   product=Product(args.product), amount=amount, currency=args.currency.upper(), on=on,
                   registry=OfflineRegistry())
    print(json.dumps({"country": result.country, "state": args.state, "product": args.product,
                      "amount": str(amount), "currency": args.currency.upper(), "tax_id_valid": result.tax_id_valid,
                      "tax_lines": [{"name": line.name, "rate": str(line.rate), "amount": str(line.amount)}
                                    for line in result.lines],
                      "tax": format_amount(result.tax, currency), "total": format_amount(amount + result.tax, currency)}, indent=2))
    return 0


def _tax_check(args: argparse.Namespace) -> int:
    """The operator's check before a release: the region table against two independent VAT datasets."""
    from datetime import date, timedelta
    from decimal import Decimal
    from pathlib import Path

    import duty27_eu_vat
    import eu_vat_rates_data

    from billing.tax import TABLE, TaxTable

    # eu-vat-rates-data holds today's rates only, so the comparison is always of today.
    today = date.today()
    try:
        table = TaxTable.load(Path(args.table) if args.table else TABLE)
    except (OSError, ValueError) as err:
        return _fail(f"table: {err}")
    percent = lambda rate: f"{(rate * 100).normalize():f}%"  # noqa: E731
    eu = {c.code for c in duty27_eu_vat.list_countries()} | {"GR"}
    # The Isle of Man charges UK VAT (TAX.md), so its row is checked against the United Kingdom's rate.
    dataset_code = {"IM": "GB"}
    differing: set[str] = set()

    print(f"standard rates on {today.isoformat()} against eu-vat-rates-data {eu_vat_rates_data.data_version} "
          f"({eu_vat_rates_data.dataset['source']})")
    rows = [("region", "tax", "ours", "dataset", "status")]
    for rule in table.rules:
        region = rule.country if rule.subdivisions is None else f"{rule.country}-{'/'.join(rule.subdivisions)}"
        ours = rule.rate_on(today)
        code = dataset_code.get(rule.country, rule.country)
        theirs = eu_vat_rates_data.get_standard_rate(code) if rule.subdivisions is None else None
        if theirs is None:
            rows.append((region, rule.name, percent(ours) if ours is not None else "-", "-", "not in dataset"))
            continue
        theirs = Decimal(str(theirs)) / 100
        same = ours == theirs
        if not same:
            differing.add(region)
        rows.append((region, rule.name, percent(ours) if ours is not None else "-",
                     percent(theirs) + ("" if code == rule.country else f" ({code})"), "ok" if same else "DIFFERS"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())

    # History: every day since the table's history starts, EU standard rates only (what duty27-eu-vat holds).
    start = date(2020, 1, 1)
    days = [start + timedelta(days=n) for n in range((today - start).days + 1)]
    mismatches = []
    for rule in table.rules:
        if rule.country not in eu or rule.subdivisions is not None:
            continue
        run = None
        for day in days:
            ours, theirs = rule.rate_on(day), duty27_eu_vat.get_standard_rate(rule.country, day) / 100
            if ours == theirs:
                run = None
            elif run is not None and tuple(run[3:]) == (ours, theirs) and run[2] == day - timedelta(days=1):
                run[2] = day
            else:
                run = [rule.country, day, day, ours, theirs]
                mismatches.append(run)
    print(f"\nEU standard rates day by day from {start.isoformat()} to {today.isoformat()} against duty27-eu-vat "
          f"(data as of {duty27_eu_vat.DATA_AS_OF.isoformat()}): "
          + ("no difference" if not mismatches else f"{len(mismatches)} difference(s)"))
    for country, first, last, ours, theirs in mismatches:
        differing.add(country)
        print(f"  {country}  {first.isoformat()}..{last.isoformat()}  ours {percent(ours) if ours is not None else '-'}"
              f"  dataset {percent(theirs)}  DIFFERS")
    if differing:
        print(f"billing: the tax table differs from the datasets for: {', '.join(sorted(differing))}", file=sys.stderr)
        return 1
    return 0


async def _client() -> Any:
    from store.db import Database
    from store.gateway_http import configured_gateway
    from services.client import BillingClient
    from worker import connect

    db = Database(config.database_url())
    return BillingClient(await connect(), db, configured_gateway(db))


async def _billing_profile(client: Any, args: argparse.Namespace) -> Any:
    """The new profile: the JSON file, or the profile on file with the options given replacing its values;
    validated as at creation (BillingProfileIn), errors naming the field."""
    import asyncio as _asyncio

    from billing.profiles import BillingProfileIn
    from store.tables import BillingProfile
    from services.client import BillingError

    if args.file:
        try:
            with open(args.file, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, json.JSONDecodeError) as err:
            raise BillingError(f"cannot read {args.file}: {err}") from None
    else:
        def on_file() -> dict[str, Any]:
            with client.db.session() as s:
                row = s.get(BillingProfile, args.org)
                if row is None:
                    raise BillingError(f"unknown organization {args.org!r}")
                return row.model_dump(include=set(BillingProfileIn.model_fields) - {"billing_email",
                                                                                   "only_invoice_emails"})
        data = await _asyncio.to_thread(on_file)
        for name in ("country", "state", "city", "address_line1", "address_line2", "postal_code", "company_name",
                     "tax_id"):
            value = getattr(args, name)
            if value is not None:
                data[name] = value or None
    try:
        return BillingProfileIn.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        raise BillingError(f"billing_profile.{'.'.join(str(p) for p in first['loc'])}: "
                           f"{first['msg'].removeprefix('Value error, ')}") from None


def _api_key(args: argparse.Namespace) -> int:
    from services import apikeys
    from store.db import Database

    db = Database(config.database_url())
    try:
        if args.key_command == "create":
            try:
                key = apikeys.create_key(db, ApiRole(args.role), org_id=args.org, project=args.project, name=args.name)
            except apikeys.ApiKeyError as err:
                return _fail(str(err))
            if args.json:
                print(json.dumps({"id": key.id, "key": key.secret, "org": key.org_id, "role": key.role.value,
                                  "project": key.project}))
            else:
                print(key.secret)
                print(f"{key.id}: {key.role.title}" + (f" of {key.org_id}" if key.org_id else "")
                      + (f", project {key.project}" if key.project else "")
                      + " (shown once: only its hash is kept)", file=sys.stderr)
        elif args.key_command == "list":
            for key in apikeys.list_keys(db, args.org):
                state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
                print(f"{key.id}\t{key.org_id or '(operator)'}\t{key.role}\t{key.project or ''}\t{key.name}\t{state}")
        else:
            try:
                apikeys.revoke_key(db, args.key_id)
            except apikeys.ApiKeyError as err:
                return _fail(str(err))
            print(f"{args.key_id} revoked")
    finally:
        db.dispose()
    return 0


async def _run(args: argparse.Namespace) -> int:
    from contracts.outcomes import NothingToDo
    from services.client import BillingError

    if args.command == "simulate":
        return await _simulate(args)
    if args.command == "tax":
        return _tax_check(args) if args.tax_command == "check" else _tax_quote(args)
    if args.command == "db":
        from store import migrate  # here: alembic takes seconds to import, which every other command would pay

        migrate.upgrade(config.database_url())
        return 0
    if args.command == "api-key":
        return _api_key(args)
    if args.command == "codec-key":
        from contracts.codec import new_key_line

        print(new_key_line(args.id))
        return 0
    if args.command == "gateway":
        from starter.gateway_service import serve as serve_gateway

        await serve_gateway(args.host, args.port, args.database_url)
        return 0
    if args.command == "serve-api":
        from starter.api_server import serve_standalone

        await serve_standalone(args.host, args.port)
        return 0
    client = await _client()
    try:
        if args.command == "retry-payment":
            print(await client.retry_payment(args.org, args.invoice, requested_by="cli"))
        elif args.command == "pay-now":
            print((await client.pay_now(args.org, args.invoice, requested_by="cli")).model_dump_json(indent=2))
        elif args.command == "record-payment":
            from decimal import Decimal, InvalidOperation
            try:
                amount = Decimal(args.amount)
            except InvalidOperation:
                return _fail(f"amount: {args.amount!r} is not an amount")
            print((await client.record_payment(args.org, args.invoice, args.method, amount, recorded_by="cli",
                                               reference=args.reference)).model_dump_json(indent=2))
        elif args.command == "forgive":
            print((await client.forgive_invoice(args.org, args.invoice, args.reason, forgiven_by=args.by))
                  .model_dump_json(indent=2))
        elif args.command == "refund":
            print((await client.refund_payment(args.org, args.invoice, requested_by="cli")).model_dump_json(indent=2))
        elif args.command == "set-billing-profile":
            profile = await _billing_profile(client, args)
            print(", ".join(await client.set_billing_profile(args.org, profile, changed_by=args.changed_by))
                  + " changed")
        elif args.command == "charge-invoice":
            print((await client.charge_invoice(args.invoice)).id)
        elif args.command == "apply-code":
            print((await client.apply_activation_code(args.org, args.code, applied_by="cli")).model_dump_json(indent=2))
        elif args.command == "reissue-code":
            print(f"code #{await client.reissue_activation_code(args.org)} e-mailed to the billing contact")
        elif args.command == "month-end":
            print((await client.run_month_end(args.period)).model_dump_json(indent=2))
        elif args.command == "settle":
            print((await client.settle(args.org, args.period)).model_dump_json(indent=2))
    except NothingToDo as done:
        print(done.notice)  # a repeated or late action is harmless
    except (BillingError, ValidationError) as err:
        return _fail(str(err))
    return 0


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    configure_logging(os.environ.get("LOG_LEVEL", "WARNING"), stream=sys.stderr)
    if args.command == "simulate":
        for handler in logging.getLogger().handlers:
            handler.addFilter(_TestServerCapabilityWarning())
    if args.command != "gateway":  # the gateway service is no Temporal client
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

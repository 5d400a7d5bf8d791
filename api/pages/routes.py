"""The pages customers use (SPEC G0-G5, D3, A1-A5, F1-F3, E1), server-rendered under /orgs/{org}/…, for the
organization's members only (I2): invoices, one invoice with its actions, Available Credits, the billing profile,
the payment method, and signing in with a one-time link. Every form carries a CSRF token; every change goes through
services.client.BillingClient, like the HTTP API's."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import pycountry
from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError

from api.context import ApiContext, context
from api.pages import readers
from api.pages.session import (CSRF_FIELD, clear_session, csrf_pair, csrf_valid, current_member, may, set_csrf_cookie,
                               PagesSettings, set_session, settings, wall_now)
from billing.cards import payment_method_adapter
from billing.emails import bank_details
from billing.money import format_amount
from billing.permissions import Access
from billing.profiles import BillingProfileIn, check_email
from contracts.outcomes import NothingToDo
from services import credits, documents, invoices, signin
from services.client import BillingError
from services.invoices import Action, NotFound, StatusFilter
from services.signin import Member, SigninRefused

TEMPLATES = Path(__file__).parent / "templates"
router = APIRouter(include_in_schema=False)
Ctx = Annotated[ApiContext, Depends(context)]
LIST_PAGE = 25


# ---------------------------------------------------------------- rendering

def money(amount: Decimal | str | None, currency: str) -> str:
    """Every amount with its currency and the currency's minor unit (M1): "USD 1,234.50"."""
    if amount is None:
        return ""
    text = format_amount(Decimal(amount), currency)
    whole, _, cents = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    grouped = f"{int(whole.lstrip('-')):,}"
    return f"{currency} {sign}{grouped}{'.' + cents if cents else ''}"


def plain(value: Decimal | None) -> str:
    return "" if value is None else f"{Decimal(value).normalize():f}"


def percent(rate: Decimal) -> str:
    return f"{(Decimal(rate) * 100).normalize():f}%"


def iso_time(value) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), trim_blocks=True,
                  lstrip_blocks=True)
env.filters.update(money=money, plain=plain, percent=percent, iso_time=iso_time)
env.globals.update(Action=Action)

COUNTRIES = sorted(((c.alpha_2, c.name) for c in pycountry.countries), key=lambda c: c[1])
STATUS_CHOICES = [("", "All"), ("pending", "Pending"), ("free", "Free"), ("successful", "Successful"),
                  ("closed", "Closed"), ("paid", "Paid"), ("failed", "Failed"), ("prepaid", "Prepaid"),
                  ("invoiced", "Invoiced"), ("forgiven", "Forgiven")]
NAV = [("invoices", "Invoices"), ("credits", "Available Credits"), ("billing-profile", "Billing profile"),
       ("payment-method", "Payment method")]


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    cookie, token, new = csrf_pair(request)
    html = env.get_template(template).render(request=request, csrf_field=CSRF_FIELD, csrf_token=token, nav=NAV,
                                             **values)
    response = HTMLResponse(html, status_code=status_code)
    if new:
        set_csrf_cookie(response, settings(request), cookie)
    response.headers["Referrer-Policy"] = "no-referrer"  # sign-in links must not leak through Referer
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


class SignInRequired(Exception):
    def __init__(self, org_id: str, next_path: str) -> None:
        self.org_id, self.next_path = org_id, next_path


class PageError(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        self.status, self.title, self.message = status, title, message


def install_handlers(app) -> None:
    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(f"/orgs/{exc.org_id}/signin?{urlencode({'next': exc.next_path})}", status_code=303)

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        return render(request, "error.html", status_code=exc.status, title=exc.title, message=exc.message,
                      org=None, member=None)


async def signed_in(request: Request, org: str) -> Member:
    """The member signed in for this organization; anyone else is sent to sign in (the sign-in page says nothing
    about who is a member)."""
    found = await current_member(request, org)
    if found is None:
        raise SignInRequired(org, request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return found


Signed = Annotated[Member, Depends(signed_in)]


def check_form(request: Request, token: str | None, member: Member | None = None,
               access: Access | None = None) -> None:
    if not csrf_valid(request, token):
        raise PageError(403, "Form expired", "This form could not be verified (CSRF). Reload the page and try again.")
    if member is not None and access is not None and not may(member, access):
        raise PageError(403, "Not allowed", f"A {member.role.title} may not change billing: that needs "
                                            "Organization Owner or Billing Admin.")


def _safe_next(org: str, next_path: str | None) -> str:
    default = f"/orgs/{org}/invoices"
    if next_path and next_path.startswith(f"/orgs/{org}/") and "//" not in next_path and "\\" not in next_path:
        return next_path
    return default


# ---------------------------------------------------------------- signing in

@router.get("/orgs/{org}/signin", response_class=HTMLResponse)
async def signin_form(request: Request, org: str, next: str | None = None) -> Response:
    return render(request, "signin.html", org=org, member=None, next=_safe_next(org, next), sent_to=None)


@router.post("/orgs/{org}/signin", response_class=HTMLResponse)
async def signin_request(request: Request, org: str, ctx: Ctx, email: Annotated[str, Form(max_length=320)],
                         csrf_token: Annotated[str | None, Form()] = None,
                         next: Annotated[str | None, Form()] = None) -> Response:
    check_form(request, csrf_token)
    try:
        address = check_email(email)
    except ValueError as err:
        return render(request, "signin.html", status_code=422, org=org, member=None, next=_safe_next(org, next),
                      sent_to=None, error=str(err), email=email)
    pages = settings(request)
    base = str(request.base_url).rstrip("/")
    await signin.send_link(ctx.db, pages.smtp, org, address, lambda token: f"{base}/orgs/{org}/signin/{token}",
                           wall_now(), pages.link_ttl)
    # The same answer whether or not the address is a member's (nobody learns who is).
    return render(request, "signin.html", org=org, member=None, next=_safe_next(org, next), sent_to=address,
                  minutes=int(pages.link_ttl.total_seconds() // 60))


@router.get("/orgs/{org}/signin/{token}", response_class=HTMLResponse)
async def signin_link(request: Request, org: str, token: str) -> Response:
    """The link from the e-mail: a page whose form uses it (a mail scanner fetching the link uses nothing)."""
    return render(request, "signin_link.html", org=org, member=None, token=token)


@router.post("/orgs/{org}/signin/{token}")
async def signin_redeem(request: Request, org: str, token: str, ctx: Ctx,
                        csrf_token: Annotated[str | None, Form()] = None) -> Response:
    check_form(request, csrf_token)
    pages = settings(request)
    try:
        session_id, found = await asyncio.to_thread(signin.redeem, ctx.db, token, wall_now(), pages.session_ttl)
    except SigninRefused as err:
        return render(request, "signin.html", status_code=410, org=org, member=None, next=_safe_next(org, None),
                      sent_to=None, error=str(err))
    response = RedirectResponse(f"/orgs/{found.org_id}/invoices", status_code=303)
    set_session(response, pages, session_id)
    return response


@router.post("/orgs/{org}/signout")
async def signout(request: Request, org: str, ctx: Ctx, csrf_token: Annotated[str | None, Form()] = None) -> Response:
    check_form(request, csrf_token)
    from api.pages.session import SESSION_COOKIE, unsigned

    session_id = unsigned(settings(request).secret, request.cookies.get(SESSION_COOKIE))
    if session_id is not None:
        await asyncio.to_thread(signin.end_session, ctx.db, session_id, wall_now())
    response = RedirectResponse(f"/orgs/{org}/signin", status_code=303)
    clear_session(response, settings(request))
    return response


@router.get("/orgs/{org}")
async def org_home(org: str) -> Response:
    return RedirectResponse(f"/orgs/{org}/invoices", status_code=303)


# ---------------------------------------------------------------- invoices (G0, G1)

@router.get("/orgs/{org}/invoices", response_class=HTMLResponse)
async def invoice_list(request: Request, org: str, member: Signed, ctx: Ctx,
                       status: Annotated[str | None, Query(max_length=20)] = None,
                       from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
                       to: Annotated[str | None, Query(max_length=10)] = None,
                       cursor: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    errors: dict[str, str] = {}
    status_filter = None
    if status:
        try:
            status_filter = StatusFilter(status)
        except ValueError:
            errors["status"] = "choose a status from the list"
    dates: dict[str, date | None] = {}
    for name, value in (("from", from_), ("to", to)):
        try:
            dates[name] = date.fromisoformat(value) if value else None
        except ValueError:
            errors[name] = "give a date as YYYY-MM-DD"
            dates[name] = None
    if dates["from"] and dates["to"] and dates["from"] > dates["to"]:
        errors["to"] = "'To' is before 'From'"
    today = await ctx.today()
    page = None
    if not errors:
        try:
            page = await asyncio.to_thread(invoices.list_invoices, ctx.db, org, status=status_filter,
                                           from_date=dates["from"], to_date=dates["to"], cursor=cursor,
                                           limit=LIST_PAGE, today=today)
        except invoices.BadCursor:
            errors["cursor"] = "that page link is not valid: start again from the first page"
    cycle = await asyncio.to_thread(invoices.current_cycle, ctx.db, org)
    query = {k: v for k, v in (("status", status or ""), ("from", from_ or ""), ("to", to or "")) if v}
    next_url = (f"/orgs/{org}/invoices?{urlencode({**query, 'cursor': page.next_cursor})}"
                if page is not None and page.next_cursor else None)
    first_url = f"/orgs/{org}/invoices?{urlencode(query)}" if cursor else None
    return render(request, "invoices.html", status_code=422 if errors else 200, org=org, member=member,
                  active="invoices", page=page, cycle=cycle, errors=errors, status=status or "",
                  from_value=from_ or "", to_value=to or "", statuses=STATUS_CHOICES, next_url=next_url,
                  first_url=first_url)


# ---------------------------------------------------------------- one invoice (G2, G3)

async def _detail(ctx: ApiContext, org: str, number: str, offset: int = 0, limit: int | None = 0):
    try:
        return await asyncio.to_thread(invoices.invoice_detail, ctx.db, org, number, usage_offset=offset,
                                       usage_limit=limit)
    except NotFound:
        raise PageError(404, "Not found", f"There is no invoice {number} in this organization.") from None


NOTICES = {"retry": "Retry requested: the failed payment is being charged again. This page shows its outcome.",
           "paynow": "Payment made on-session with the method on file."}


@router.get("/orgs/{org}/invoices/{number}", response_class=HTMLResponse)
async def invoice_page(request: Request, org: str, number: str, member: Signed, ctx: Ctx,
                       page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
                       done: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    return await _invoice_response(request, org, number, member, ctx, page, notice=NOTICES.get(done or ""))


async def _invoice_response(request: Request, org: str, number: str, member: Member, ctx: ApiContext, page: int,
                            notice: str | None = None, error: str | None = None, status_code: int = 200) -> Response:
    size = settings(request).usage_page_size
    detail = await _detail(ctx, org, number, (page - 1) * size, size)
    pages = max(1, -(-detail.usage_lines // size))
    if page > pages:
        raise PageError(404, "Not found", f"Usage Details of {number} have {pages} page(s).")
    companion = None  # the tax invoice beside the cloud invoice (or the cloud invoice of a tax invoice)
    other = detail.tax_invoice or detail.cloud_invoice
    if other:
        companion = await asyncio.to_thread(invoices.find_invoice, ctx.db, org, other)
    acts_on = detail.cloud_invoice if detail.kind == "tax" and detail.cloud_invoice else detail.number
    return render(request, "invoice.html", status_code=status_code, org=org, member=member, active="invoices",
                  d=detail, companion=companion, page=page, pages=pages, size=size, notice=notice, error=error,
                  acts_on=acts_on, bank_details=bank_details(), may_change=may(member, Access.CHANGE_BILLING),
                  chart_alt={"by_service": _alt("Total usage by service", detail.usage_by_service),
                             "by_deployment": _alt("Usage by deployment", detail.usage_by_deployment)})


def _alt(title: str, sums: dict[str, Decimal]) -> str:
    if not sums:
        return f"{title}: no usage recorded in this period"
    return f"{title}: " + "; ".join(f"{name} {money(amount, 'USD')}" for name, amount in
                                    sorted(sums.items(), key=lambda kv: -kv[1]))


@router.get("/orgs/{org}/invoices/{number}/charts/{which}.svg")
async def invoice_chart(org: str, number: str, which: str, member: Signed, ctx: Ctx) -> Response:
    if which not in ("by_service", "by_deployment"):
        raise PageError(404, "Not found", "No such chart.")
    detail = await _detail(ctx, org, number)
    draw = documents.usage_by_service_chart if which == "by_service" else documents.usage_by_deployment_chart
    svg = await asyncio.to_thread(draw, detail.usage_by_service if which == "by_service"
                                  else detail.usage_by_deployment)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, no-store"})


@router.post("/orgs/{org}/invoices/{number}/{action}", response_class=HTMLResponse)
async def invoice_action(request: Request, org: str, number: str, action: str, member: Signed, ctx: Ctx,
                         csrf_token: Annotated[str | None, Form()] = None) -> Response:
    """G2's actions: RETRY signals the failed payment's workflow (F3); PAY NOW charges the method on file
    on-session (E2). Both go through BillingClient; the workflow moves the money."""
    if action not in ("retry", "pay-now"):
        raise PageError(404, "Not found", "No such action.")
    check_form(request, csrf_token, member, Access.CHANGE_BILLING)
    await _detail(ctx, org, number)  # 404 for another organization's invoice
    try:
        if action == "retry":
            await ctx.billing.retry_payment(org, number, requested_by=member.email)
        else:
            await ctx.billing.pay_now(org, number, requested_by=member.email)
    except NothingToDo as err:
        return await _invoice_response(request, org, number, member, ctx, 1, notice=str(err).capitalize())
    except BillingError as err:
        return await _invoice_response(request, org, number, member, ctx, 1, error=str(err), status_code=409)
    done = "retry" if action == "retry" else "paynow"
    return RedirectResponse(f"/orgs/{org}/invoices/{number}?done={done}", status_code=303)


# ---------------------------------------------------------------- Available Credits (D3, D1)

CREDIT_KINDS = {"monthly_commitment": "Monthly commitment (term)", "commitment_bank": "Banked commitment",
                "prepaid": "Prepaid credits", "promotional": "Promotional credits", "elastic": "Elastic Billing"}


def credit_kind(kind: str) -> str:
    return CREDIT_KINDS.get(kind, kind.replace("_", " ").capitalize())


env.filters.update(credit_kind=credit_kind)


@router.get("/orgs/{org}/credits", response_class=HTMLResponse)
async def available_credits(request: Request, org: str, member: Signed, ctx: Ctx) -> Response:
    """D3 as of the business date, read from services.credits (the API's GET /v1/credits reads the same)."""
    if not may(member, Access.READ_BILLING):
        raise PageError(403, "Not allowed", f"A {member.role.title} may not read the organization's billing.")
    table = await asyncio.to_thread(credits.available_credits, ctx.db, org, await ctx.today())
    return render(request, "credits.html", org=org, member=member, active="credits", t=table)


# ---------------------------------------------------------------- billing profile (A1-A3, D7)

PROFILE_LABELS = {"country": "Country", "address_line1": "Address line 1", "address_line2": "Address line 2",
                  "city": "City", "state": "State/Province/Region", "postal_code": "ZIP or postal code",
                  "company_name": "Company name", "tax_id": "VAT/GST ID", "billing_email": "Billing e-mail",
                  "only_invoice_emails": "Only send invoice e-mails to the billing e-mail"}


async def _profile_response(request: Request, org: str, member: Member, ctx: ApiContext, *, status_code: int = 200,
                            notice: str | None = None, errors: dict[str, str] | None = None,
                            form: dict[str, Any] | None = None, contact_form: dict[str, Any] | None = None,
                            contact_errors: dict[str, str] | None = None) -> Response:
    profile = await asyncio.to_thread(readers.profile, ctx.db, org)
    if profile is None:
        raise PageError(404, "Not found", "This organization has no billing profile.")
    trail = await asyncio.to_thread(readers.audit_trail, ctx.db, org)
    values = form or profile.model_dump()
    contact = contact_form or {"billing_email": profile.billing_email or "",
                               "only_invoice_emails": profile.only_invoice_emails}
    return render(request, "billing_profile.html", status_code=status_code, org=org, member=member,
                  active="billing-profile", profile=profile, values=values, contact=contact, errors=errors or {},
                  contact_errors=contact_errors or {}, notice=notice, trail=trail, countries=COUNTRIES,
                  labels=PROFILE_LABELS, may_change=may(member, Access.CHANGE_BILLING))


@router.get("/orgs/{org}/billing-profile", response_class=HTMLResponse)
async def billing_profile(request: Request, org: str, member: Signed, ctx: Ctx,
                          done: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    notice = {"address": "Billing address and tax ID saved.", "contact": "Billing contact saved."}.get(done or "")
    return await _profile_response(request, org, member, ctx, notice=notice)


def _field_errors(err: ValidationError, labels: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in err.errors(include_url=False, include_input=False):
        name = str(e["loc"][-1]) if e["loc"] else "form"
        message = e["msg"].removeprefix("Value error, ")
        out.setdefault(name, f"{labels.get(name, name)}: {message}")
    return out


@router.post("/orgs/{org}/billing-profile", response_class=HTMLResponse)
async def save_billing_profile(
        request: Request, org: str, member: Signed, ctx: Ctx,
        country: Annotated[str, Form(max_length=2)], address_line1: Annotated[str, Form(max_length=200)],
        city: Annotated[str, Form(max_length=100)], state: Annotated[str, Form(max_length=100)],
        postal_code: Annotated[str, Form(max_length=20)],
        address_line2: Annotated[str, Form(max_length=200)] = "", company_name: Annotated[str, Form(max_length=200)] = "",
        tax_id: Annotated[str, Form(max_length=40)] = "", csrf_token: Annotated[str | None, Form()] = None) -> Response:
    check_form(request, csrf_token, member, Access.CHANGE_BILLING)
    form = dict(country=country, address_line1=address_line1, address_line2=address_line2 or None, city=city,
                state=state, postal_code=postal_code, company_name=company_name or None, tax_id=tax_id or None)
    errors: dict[str, str] = {}
    try:
        profile = BillingProfileIn(**form)  # A1-A2: the address and the tax ID against its country's format
    except ValidationError as err:
        errors = _field_errors(err, PROFILE_LABELS)
    if errors:
        return await _profile_response(request, org, member, ctx, status_code=422, errors=errors, form=form)
    try:
        await ctx.billing.set_billing_profile(org, profile, changed_by=member.email)
    except NothingToDo:
        return await _profile_response(request, org, member, ctx, notice="Nothing changed: the billing address "
                                                                         "and tax ID are already so.")
    except BillingError as err:
        field = err.field or "form"
        return await _profile_response(request, org, member, ctx, status_code=409, form=form,
                                       errors={field: str(err)})
    return RedirectResponse(f"/orgs/{org}/billing-profile?done=address", status_code=303)


@router.post("/orgs/{org}/billing-contact", response_class=HTMLResponse)
async def save_billing_contact(request: Request, org: str, member: Signed, ctx: Ctx,
                               billing_email: Annotated[str, Form(max_length=320)] = "",
                               only_invoice_emails: Annotated[str | None, Form()] = None,
                               csrf_token: Annotated[str | None, Form()] = None) -> Response:
    check_form(request, csrf_token, member, Access.CHANGE_BILLING)
    only = only_invoice_emails == "on"
    contact = {"billing_email": billing_email, "only_invoice_emails": only}
    if only and not billing_email.strip():
        return await _profile_response(request, org, member, ctx, status_code=422, contact_form=contact,
                                       contact_errors={"only_invoice_emails": "Only send invoice e-mails to the "
                                                       "billing e-mail: set a billing e-mail first"})
    try:
        await ctx.billing.set_billing_contact(org, billing_email.strip() or None, only, changed_by=member.email)
    except ValueError as err:  # check_email: not an e-mail address
        return await _profile_response(request, org, member, ctx, status_code=422, contact_form=contact,
                                       contact_errors={"billing_email": f"Billing e-mail: {err}"})
    except NothingToDo:
        return await _profile_response(request, org, member, ctx, notice="Nothing changed: the billing contact is "
                                                                         "already so.")
    return RedirectResponse(f"/orgs/{org}/billing-profile?done=contact", status_code=303)


# ---------------------------------------------------------------- payment method (A5, F1-F2, E1)

CARD_LABELS = {"name": "Name on card", "number": "Card number", "exp": "Expiration date (MM/YY)", "cvc": "CVC",
               "email": "PayPal e-mail", "type": "Payment method"}


async def _method_response(request: Request, org: str, member: Member, ctx: ApiContext, *, status_code: int = 200,
                           notice: str | None = None, errors: dict[str, str] | None = None,
                           form: dict[str, Any] | None = None, result=None) -> Response:
    view = await asyncio.to_thread(readers.payment_method, ctx.db, org)
    return render(request, "payment_method.html", status_code=status_code, org=org, member=member,
                  active="payment-method", view=view, errors=errors or {}, form=form or {"type": "card"},
                  notice=notice, result=result, may_change=may(member, Access.CHANGE_BILLING))


@router.get("/orgs/{org}/payment-method", response_class=HTMLResponse)
async def payment_method(request: Request, org: str, member: Signed, ctx: Ctx) -> Response:
    return await _method_response(request, org, member, ctx)


@router.post("/orgs/{org}/payment-method", response_class=HTMLResponse)
async def replace_payment_method(
        request: Request, org: str, member: Signed, ctx: Ctx,
        type: Annotated[str, Form(max_length=10)] = "card", name: Annotated[str, Form(max_length=200)] = "",
        number: Annotated[str, Form(max_length=40)] = "", exp: Annotated[str, Form(max_length=10)] = "",
        cvc: Annotated[str, Form(max_length=8)] = "", email: Annotated[str, Form(max_length=320)] = "",
        authenticate: Annotated[str | None, Form()] = None,
        csrf_token: Annotated[str | None, Form()] = None) -> Response:
    """A5: validate the card (or PayPal) at the edge, naming the field; F1-F2: with `authenticate`, the card is
    authenticated with its issuer and every failed payment is charged again (the page says how many were
    collected). The number and CVC are never echoed back, logged or stored (A6)."""
    check_form(request, csrf_token, member, Access.CHANGE_BILLING)
    kept = {"type": type, "name": name, "exp": exp, "email": email, "authenticate": authenticate == "on"}
    raw = ({"type": "card", "number": number, "exp": exp, "cvc": cvc, "name": name} if type == "card"
           else {"type": "paypal", "email": email})
    try:
        method = payment_method_adapter.validate_python(raw, context={"today": await ctx.today()})
    except ValidationError as err:
        return await _method_response(request, org, member, ctx, status_code=422, form=kept,
                                      errors=_field_errors(err, CARD_LABELS))
    try:
        result = await ctx.billing.update_payment_method(org, method, authenticate=authenticate == "on" and
                                                         type == "card", requested_by=member.email)
    except BillingError as err:
        return await _method_response(request, org, member, ctx, status_code=409, form=kept,
                                      errors={"form": str(err)})
    return await _method_response(request, org, member, ctx, result=result,
                                  notice="Payment method replaced." if not result.authenticated else
                                  "Payment method replaced and authenticated with its issuer.")


STATIC = Path(__file__).parent / "static"


def install(app: FastAPI, pages_settings: PagesSettings | None = None) -> None:
    """Mount the pages, their error handlers and their static files on the API's application."""
    app.state.pages = pages_settings or PagesSettings()
    app.include_router(router)
    install_handlers(app)
    app.mount("/static/pages", StaticFiles(directory=STATIC), name="pages-static")

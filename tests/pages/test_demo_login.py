"""`make run` writes a one-time sign-in link for the demo organization's owner into data/demo.env (G5)."""

from __future__ import annotations

import httpx

from services.client import BillingClient
from starter.api_server import _read_env, write_demo_env
from store.gateway import SandboxGateway
from tests.factories import org_with_method
from tests.pages.conftest import csrf_of, fixed_clock, pages_app


async def test_the_demo_login_url_lands_on_the_demo_invoices_once(db, tmp_path):
    org_with_method(db, SandboxGateway(db), org_id="demo")
    billing = BillingClient(None, db, SandboxGateway(db), clock=fixed_clock)  # type: ignore[arg-type]
    env = tmp_path / "demo.env"
    write_demo_env(billing, env, "http://pages.test")
    url = _read_env(env)["BILLING_DEMO_LOGIN_URL"]
    assert url.startswith("http://pages.test/orgs/demo/signin/sl_")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=pages_app(db)),
                                 base_url="http://pages.test") as client:
        page = await client.get(url)
        landed = await client.post(url, data={"csrf_token": csrf_of(page.text)}, follow_redirects=True)
        assert landed.status_code == 200 and str(landed.url) == "http://pages.test/orgs/demo/invoices"
        assert "owner@demo.test" in landed.text
        again = await client.post(url, data={"csrf_token": csrf_of(page.text)})
        assert again.status_code == 410

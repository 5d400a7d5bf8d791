"""The customer's pages (SPEC G5), served by the API's application: `install(app)` mounts them."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.pages.session import PagesSettings

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI, settings: PagesSettings | None = None) -> None:
    from api.pages import routes

    app.state.pages = settings or PagesSettings()
    app.include_router(routes.router)
    routes.install_handlers(app)
    app.mount("/static/pages", StaticFiles(directory=STATIC), name="pages-static")


__all__ = ["PagesSettings", "install"]

"""The customer's pages (SPEC G5), served by the API's application: `api.pages.routes.install(app)` mounts them."""

from api.pages.session import PagesSettings

__all__ = ["PagesSettings"]

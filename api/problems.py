"""Errors as `application/problem+json` (RFC 9457, SPEC I4): a title, the status, a detail for people and, for
invalid input, each offending field's path. Never a stack trace, never a database error."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from billing.logging import get_logger
from billing.permissions import PermissionDenied
from contracts.outcomes import NothingToDo
from services.client import BillingError
from services.invoices import BadCursor, NotFound

PROBLEM = "application/problem+json"
log = get_logger("api")


class FieldError(BaseModel):
    field: str  # dotted path into the request: "body.lines.3.quantity", "query.status"
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details; `errors` lists the fields to blame on a 422."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None


class ApiProblem(Exception):
    """Raised by a route to answer with a problem; nothing was changed."""

    def __init__(self, status: int, title: str, detail: str | None = None,
                 errors: list[FieldError] | None = None, type_: str = "about:blank",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or title)
        self.problem = Problem(type=type_, title=title, status=status, detail=detail, errors=errors)
        self.headers = headers


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(problem.model_dump(exclude_none=True), status_code=problem.status, media_type=PROBLEM,
                        headers=headers)


def not_found(what: str) -> ApiProblem:
    return ApiProblem(404, "Not Found", what)


def _path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _field_errors(errors: list[dict[str, Any]], prefix: tuple[Any, ...] = ()) -> list[FieldError]:
    out = []
    for error in errors:
        message = error.get("msg", "invalid")
        # A validator's ValueError reads "Value error, <ours>": keep ours.
        message = message.removeprefix("Value error, ")
        out.append(FieldError(field=_path(prefix + tuple(error.get("loc", ()))), message=message))
    return out


STATUS_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                 405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type",
                 422: "Unprocessable Content", 429: "Too Many Requests"}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(exc.problem, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(Problem(title="Unprocessable Content", status=422,
                                        detail="the request is not valid: see errors",
                                        errors=_field_errors(list(exc.errors()))))

    @app.exception_handler(ValidationError)
    async def _invalid_model(request: Request, exc: ValidationError) -> JSONResponse:
        # A domain model refusing what a route built from valid JSON (e.g. a card's number, an address).
        return problem_response(Problem(title="Unprocessable Content", status=422,
                                        detail="the request is not valid: see errors",
                                        errors=_field_errors(list(exc.errors(include_url=False)), ("body",))))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = STATUS_TITLES.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        return problem_response(Problem(title=title, status=exc.status_code, detail=detail),
                                getattr(exc, "headers", None))

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return problem_response(Problem(title="Not Found", status=404, detail=str(exc)))

    @app.exception_handler(BadCursor)
    async def _bad_cursor(request: Request, exc: BadCursor) -> JSONResponse:
        return problem_response(Problem(title="Unprocessable Content", status=422, detail=str(exc),
                                        errors=[FieldError(field="query.cursor", message=str(exc))]))

    @app.exception_handler(NothingToDo)
    async def _nothing(request: Request, exc: NothingToDo) -> JSONResponse:
        return problem_response(Problem(type="/problems/nothing-to-do", title="Nothing to do", status=409,
                                        detail=str(exc)))

    @app.exception_handler(BillingError)
    async def _refused(request: Request, exc: BillingError) -> JSONResponse:
        errors = [FieldError(field=f"body.{exc.field}", message=str(exc))] if exc.field else None
        return problem_response(Problem(type="/problems/refused", title="Refused", status=409, detail=str(exc),
                                        errors=errors))

    @app.exception_handler(PermissionDenied)
    async def _denied(request: Request, exc: PermissionDenied) -> JSONResponse:
        return problem_response(Problem(title="Forbidden", status=403, detail=str(exc)))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        # Logged with its traceback for operators; the caller gets no internals (I4).
        log.exception("api request failed", method=request.method, path=request.url.path)
        return problem_response(Problem(title="Internal Server Error", status=500,
                                        detail="the request failed on our side; it is safe to retry it with the same "
                                               "Idempotency-Key"))

"""JSON logging through structlog, with card data redacted from every line (SPEC A6)."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import IO, Any

import structlog
from stdnum import luhn
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"
_SECRET_KEYS = frozenset({"number", "cardnumber", "pan", "cvc", "cvv", "cvc2", "securitycode"})
# A run of digit groups joined by single spaces or dashes; card numbers are searched inside it.
_DIGIT_RUN = re.compile(r"[0-9]+(?:[ -][0-9]+)*")
_HANDLER_MARK = "_billing_json_handler"


def _is_secret_key(key: object) -> bool:
    # "card_number", "cardNumber" and "card-number" are the same key to a person reading logs.
    return isinstance(key, str) and key.lower().replace("_", "").replace("-", "") in _SECRET_KEYS


def _mask_run(match: re.Match[str]) -> str:
    run = match.group()
    groups = [(m.start(), m.end()) for m in re.finditer(r"[0-9]+", run)]
    out, copied, i = [], 0, 0
    while i < len(groups):
        # Longest card number starting at group i, on group boundaries (e.g. "4242 4242 4242 4242 123").
        for j in range(len(groups), i, -1):
            digits = "".join(run[s:e] for s, e in groups[i:j])
            if 13 <= len(digits) <= 19 and luhn.is_valid(digits):
                start, end = groups[i][0], groups[j - 1][1]
                out += [run[copied:start], "****" + digits[-4:]]
                copied, i = end, j
                break
        else:
            i += 1
    out.append(run[copied:])
    return "".join(out)


def mask_card_numbers(text: str) -> str:
    """Replace every Luhn-valid run of 13-19 digits (single spaces or dashes allowed) by ****1234."""
    return _DIGIT_RUN.sub(_mask_run, text)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return mask_card_numbers(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if _is_secret_key(k) else _redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_redact(v) for v in value]
    return value


def redact_card_data(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: blank card-number and CVC keys, mask card numbers inside strings."""
    return _redact(event_dict)


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Send structlog and standard-library logs (the Temporal SDK's included) to `stream` as redacted JSON lines.

    Calling it again replaces the handler it installed, so handlers never pile up.
    """
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # Other libraries log through the standard library; give them the same fields.
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            # Last before rendering, so exception text and extras are redacted too.
            redact_card_data,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger; `name` defaults to the calling module's name."""
    return structlog.stdlib.get_logger(name or sys._getframe(1).f_globals.get("__name__", "billing"))

"""Secrets that must appear nowhere in a workflow history (SPEC A6, D2): searched in every payload, decoded.

A history's JSON holds payloads base64-encoded, so a card number inside an input, a result, an update's argument,
a memo or a header is invisible to a plain text search. This walks every event, finds every Payload at any depth,
decrypts it with the payload codec (J1), decodes it through the project's data converter, and searches the
decoded text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import create_engine, text
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from contracts.codec import EncryptionCodec, load_keys

from starter.scenario import Scenario

# An activation code as generated (billing.activation): four groups of five from its alphabet. A masked code
# (*****-*****-*****-ABCDE) does not match.
ACTIVATION_CODE = re.compile(r"\b[A-HJ-NP-Z2-9]{5}-[A-HJ-NP-Z2-9]{5}-[A-HJ-NP-Z2-9]{5}-[A-HJ-NP-Z2-9]{5}\b")


def payloads(message: Message) -> Iterator[Payload]:
    """Every Payload inside a protobuf message, at any depth (inputs, results, failures' details, memo, headers)."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if isinstance(value, Message):
            yield from payloads(value)
            continue
        items = value.values() if hasattr(value, "values") else value  # a map, or a repeated field
        for item in items:
            if isinstance(item, Message):
                yield from payloads(item)


def decoded_texts(history: WorkflowHistory) -> Iterator[str]:
    """The decoded text of every payload of every event of a history."""
    converter = pydantic_data_converter.payload_converter
    codec = EncryptionCodec(load_keys())
    for event in history.events:
        for payload in payloads(event):
            payload = codec.decode_one(payload)
            try:
                value: Any = converter.from_payload(payload)
            except Exception:  # a payload of an encoding the converter does not know: search its raw bytes
                value = payload.data.decode("utf-8", "replace")
            yield value if isinstance(value, str) else json.dumps(value, default=str)


def _plain(value: Any) -> str | None:
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


def card_secrets(scenario: Scenario) -> set[str]:
    """The card numbers and CVCs a scenario types in (organizations and events)."""
    methods = [org.payment_method for org in scenario.orgs.values()]
    methods += [getattr(event, "payment_method", None) for event in scenario.events]
    found = set()
    for method in methods:
        number = _plain(getattr(method, "number", None))
        if number:
            digits = re.sub(r"\D", "", number)
            found |= {digits, f"{digits[:4]} {digits[4:8]} {digits[8:12]} {digits[12:]}"}
    return found


def cvcs(scenario: Scenario) -> set[str]:
    methods = [org.payment_method for org in scenario.orgs.values()]
    methods += [getattr(event, "payment_method", None) for event in scenario.events]
    return {_plain(method.cvc) for method in methods if getattr(method, "cvc", None)}


def assert_no_secrets(histories: Iterable[WorkflowHistory], secrets: set[str], cvc_values: set[str] = frozenset(),
                      ) -> int:
    """No card number, CVC or activation code in any decoded payload; returns how many payloads were searched."""
    searched = 0
    for history in histories:
        for text in decoded_texts(history):
            searched += 1
            for secret in secrets:
                assert secret not in text, f"{history.workflow_id}: a card number in a payload: {text[:200]}"
            for cvc in cvc_values:
                assert not re.search(rf'"cvc"\s*:\s*"{cvc}"|\bcvc={cvc}\b', text), (
                    f"{history.workflow_id}: a CVC in a payload")
            code = ACTIVATION_CODE.search(text)
            assert code is None, f"{history.workflow_id}: an activation code in a payload: {code[0]}"
    return searched


def database_text(url: str) -> bytes:
    """Everything a database holds, as bytes to search: for SQLite the files themselves (free pages and the WAL
    included), for PostgreSQL every row of every table in its text form."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
            rows = [conn.execute(text(f'SELECT t::text FROM "{table}" t')).scalars().all() for table in tables]
    finally:
        engine.dispose()
    assert "payments" in tables
    return "\n".join(row for table_rows in rows for row in table_rows).encode()

"""Standard Webhooks signing and verification (SPEC I5, I6): what a receiver believes, and what it refuses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.webhooks import SECRET_PREFIX, TOLERANCE, InvalidSignature, new_secret, secret_from_text, sign, verify

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
BODY = b'{"type":"invoice.paid","amount":"59.52"}'


def expected_signature(secret: str, message_id: str, stamp: int, body: bytes) -> str:
    """The Standard Webhooks signature computed from its definition, independently of the code under test."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def refused(message: str, headers: dict[str, str], *, body: bytes = BODY, now: datetime = AT,
            secret: str = SECRET, **kwargs) -> None:
    with pytest.raises(InvalidSignature, match=f"^{re.escape(message)}$"):
        verify(secret, body, headers, now, **kwargs)


def test_the_tolerance_is_five_minutes():
    assert TOLERANCE == timedelta(minutes=5)
    assert SECRET_PREFIX == "whsec_"


def test_a_new_secret_is_32_random_bytes_behind_the_prefix():
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_") and second.startswith("whsec_")
    assert len(base64.b64decode(first[len("whsec_"):], validate=True)) == 32
    assert first != second


def test_a_configured_text_becomes_a_secret_and_a_secret_stays_one():
    assert secret_from_text(SECRET) == SECRET
    assert secret_from_text("hello") == "whsec_aGVsbG8="
    assert secret_from_text("whsec") == "whsec_d2hzZWM="  # the prefix needs its underscore


def test_sign_gives_the_three_headers_of_the_standard():
    headers = sign(SECRET, "msg_1", AT, BODY)
    stamp = int(AT.timestamp())
    assert headers == {"webhook-id": "msg_1", "webhook-timestamp": str(stamp),
                       "webhook-signature": expected_signature(SECRET, "msg_1", stamp, BODY)}
    assert headers["webhook-timestamp"] == "1772366400"


def test_sign_uses_the_instant_whatever_the_time_zone_and_drops_fractions_of_a_second():
    paris = AT.astimezone(timezone(timedelta(hours=1))) + timedelta(microseconds=999_999)
    assert sign(SECRET, "msg_1", paris, BODY) == sign(SECRET, "msg_1", AT, BODY)


def test_sign_does_not_depend_on_the_hosts_time_zone(monkeypatch):
    expected = sign(SECRET, "msg_1", AT, BODY)
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert sign(SECRET, "msg_1", AT, BODY) == expected
    finally:
        monkeypatch.undo()
        time.tzset()


def test_verify_returns_the_message_id_of_a_genuine_webhook():
    assert verify(SECRET, BODY, sign(SECRET, "msg_1", AT, BODY), AT) == "msg_1"


def test_header_names_are_case_insensitive():
    headers = {name.title(): value for name, value in sign(SECRET, "msg_1", AT, BODY).items()}
    assert "Webhook-Id" in headers
    assert verify(SECRET, BODY, headers, AT) == "msg_1"
    upper = {name.upper(): value for name, value in sign(SECRET, "msg_1", AT, BODY).items()}
    assert verify(SECRET, BODY, upper, AT) == "msg_1"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_header_is_required(missing):
    headers = sign(SECRET, "msg_1", AT, BODY)
    refused("missing webhook-id, webhook-timestamp or webhook-signature",
            {name: value for name, value in headers.items() if name != missing})
    refused("missing webhook-id, webhook-timestamp or webhook-signature", headers | {missing: ""})


@pytest.mark.parametrize("stamp", ["soon", "1772366400.5", "99999999999999999999", "-99999999999999999999"])
def test_a_timestamp_that_is_not_unix_seconds_is_refused(stamp):
    refused("webhook-timestamp is not a Unix time in seconds", sign(SECRET, "msg_1", AT, BODY) | {
        "webhook-timestamp": stamp})


def test_the_tolerance_holds_exactly_at_its_edges():
    headers = sign(SECRET, "msg_1", AT, BODY)
    edge = timedelta(minutes=5)
    assert verify(SECRET, BODY, headers, AT + edge) == "msg_1"  # sent exactly 5 minutes ago
    assert verify(SECRET, BODY, headers, AT - edge) == "msg_1"  # sent exactly 5 minutes ahead
    refused("webhook-timestamp is too old (more than 5 minutes)", headers,
            now=AT + edge + timedelta(microseconds=1))
    refused("webhook-timestamp is in the future (more than 5 minutes)", headers,
            now=AT - edge - timedelta(microseconds=1))
    refused("webhook-timestamp is too old (more than 5 minutes)", headers, now=AT + timedelta(days=3))
    refused("webhook-timestamp is in the future (more than 5 minutes)", headers, now=AT - timedelta(days=3))


def test_the_tolerance_can_be_configured():
    headers = sign(SECRET, "msg_1", AT, BODY)
    one_minute = timedelta(minutes=1)
    assert verify(SECRET, BODY, headers, AT + one_minute, tolerance=one_minute) == "msg_1"
    assert verify(SECRET, BODY, headers, AT - one_minute, tolerance=one_minute) == "msg_1"
    refused("webhook-timestamp is too old (more than 1 minute)", headers, now=AT + timedelta(seconds=61),
            tolerance=one_minute)
    refused("webhook-timestamp is in the future (more than 1 minute)", headers, now=AT - timedelta(seconds=61),
            tolerance=one_minute)
    refused("webhook-timestamp is too old (more than 0.5 minutes)", headers, now=AT + timedelta(seconds=31),
            tolerance=timedelta(seconds=30))
    assert verify(SECRET, BODY, headers, AT + timedelta(days=2), tolerance=timedelta(days=2)) == "msg_1"


def test_a_body_that_is_not_utf8_is_refused():
    headers = sign(SECRET, "msg_1", AT, BODY)
    refused("the body is not UTF-8", headers, body=b"\xff\xfe")


def test_a_wrong_secret_body_id_or_timestamp_is_refused():
    headers = sign(SECRET, "msg_1", AT, BODY)
    no_match = "no webhook-signature matches the body"
    refused(no_match, headers, secret=secret_from_text("another secret"))
    refused(no_match, headers, body=BODY + b" ")
    refused(no_match, headers | {"webhook-id": "msg_2"})
    refused(no_match, headers | {"webhook-timestamp": str(int(AT.timestamp()) + 1)})


def test_any_v1_signature_of_several_may_match():
    headers = sign(SECRET, "msg_1", AT, BODY)
    good = headers["webhook-signature"]
    value = good.partition(",")[2]
    several = f"v2,{value} v1,{base64.b64encode(b'x' * 32).decode()} v1,not*base64 {good}"
    assert verify(SECRET, BODY, headers | {"webhook-signature": several}, AT) == "msg_1"


@pytest.mark.parametrize("signature", [
    "v2,{value}",  # only version 1 is understood
    "{value}",  # no version at all
    "v1,{value_with_junk}",  # base64 is decoded strictly: junk is not skipped
    "v1 {value}",
    "v1,",
    "v2,{value}\t{good}",  # signatures are separated by spaces (as standardwebhooks splits them), not tabs
])
def test_a_signature_in_another_version_or_encoding_is_refused(signature):
    headers = sign(SECRET, "msg_1", AT, BODY)
    value = headers["webhook-signature"].partition(",")[2]
    text = signature.format(value=value, value_with_junk=value[:4] + "!" + value[4:],
                            good=headers["webhook-signature"])
    refused("no webhook-signature matches the body", headers | {"webhook-signature": text})


ids = st.text(alphabet=st.characters(codec="ascii", exclude_characters=" \r\n"), min_size=1, max_size=40)
bodies = st.text(max_size=200).map(str.encode)
secrets_text = st.text(min_size=1, max_size=40).filter(lambda t: not t.startswith("whsec_"))
offsets = st.integers(min_value=-300, max_value=300)


@given(secrets_text, ids, bodies, offsets)
def test_what_is_signed_verifies_within_the_tolerance(text, message_id, body, offset):
    secret = secret_from_text(text)
    headers = sign(secret, message_id, AT, body)
    assert verify(secret, body, headers, AT + timedelta(seconds=offset)) == message_id


@given(secrets_text, ids, bodies, st.data())
def test_anything_tampered_is_refused(text, message_id, body, data):
    secret = secret_from_text(text)
    headers = sign(secret, message_id, AT, body)
    other_body = data.draw(bodies.filter(lambda b: b != body))
    other_id = data.draw(ids.filter(lambda i: i != message_id))
    other_stamp = data.draw(st.integers(min_value=-300, max_value=300).filter(bool)) + int(AT.timestamp())
    for tampered_body, tampered in [(other_body, headers), (body, headers | {"webhook-id": other_id}),
                                    (body, headers | {"webhook-timestamp": str(other_stamp)})]:
        with pytest.raises(InvalidSignature, match="^no webhook-signature matches the body$"):
            verify(secret, tampered_body, tampered, AT)

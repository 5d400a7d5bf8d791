"""The codec server (SPEC J1): operators read encrypted payloads through it; nobody else does."""

from __future__ import annotations

import base64
import json

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from billing.permissions import ApiRole
from contracts.codec import ENCODING, EncryptionCodec, load_keys
from tests.api.conftest import auth

pytestmark = pytest.mark.asyncio
UI = "http://127.0.0.1:8233"


def sealed_body(text: str) -> str:
    codec = EncryptionCodec(load_keys())
    payload = codec.encode_one(Payload(metadata={"encoding": b"json/plain"}, data=text.encode()))
    return json_format.MessageToJson(Payloads(payloads=[payload]))


def plain_data(response) -> str:
    payloads = json.loads(response.text)["payloads"]
    return base64.b64decode(payloads[0]["data"]).decode()


async def test_an_operator_key_decodes(api, keys):
    response = await api.post("/codec/decode", content=sealed_body('"ada@example.test"'),
                              headers={**auth(keys[ApiRole.OPERATOR]), "Content-Type": "application/json",
                                       "X-Namespace": "default"})
    assert response.status_code == 200, response.text
    assert plain_data(response) == '"ada@example.test"'
    namespaced = await api.post("/codec/default/decode", content=sealed_body('"x"'), headers=auth(keys[ApiRole.OPERATOR]))
    assert plain_data(namespaced) == '"x"'


@pytest.mark.parametrize("role", [r for r in ApiRole if r is not ApiRole.OPERATOR])
async def test_other_keys_and_no_key_are_refused(api, keys, role):
    for headers in (auth(keys[role]), {}):
        response = await api.post("/codec/decode", content=sealed_body('"secret"'), headers=headers)
        assert response.status_code == 401
        assert "secret" not in response.text


async def test_encode_then_decode(api, keys):
    plain = json_format.MessageToJson(Payloads(payloads=[Payload(metadata={"encoding": b"json/plain"}, data=b'"7"')]))
    encoded = await api.post("/codec/encode", content=plain, headers=auth(keys[ApiRole.OPERATOR]))
    payload = json.loads(encoded.text)["payloads"][0]
    assert base64.b64decode(payload["metadata"]["encoding"]) == ENCODING
    decoded = await api.post("/codec/decode", content=encoded.text, headers=auth(keys[ApiRole.OPERATOR]))
    assert plain_data(decoded) == '"7"'


async def test_bad_bodies_are_clean_problems(api, keys):
    for body in ("not json", json.dumps({"payloads": [{"metadata": {"encoding": base64.b64encode(ENCODING).decode(),
                                                                    "encryption-key-id": base64.b64encode(b"nope").decode()},
                                                       "data": "AAAA"}]})):
        response = await api.post("/codec/decode", content=body, headers=auth(keys[ApiRole.OPERATOR]))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"


async def test_cors_preflight_for_the_ui_only(api):
    allowed = await api.options("/codec/decode", headers={"Origin": UI, "Access-Control-Request-Method": "POST"})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == UI
    assert "x-namespace" in allowed.headers["access-control-allow-headers"].lower()
    other = await api.options("/codec/decode", headers={"Origin": "http://evil.test"})
    assert "access-control-allow-origin" not in other.headers


async def test_the_embedded_ui_is_trusted_from_loopback_only_when_configured(api, monkeypatch):
    headers = {"Origin": UI}
    assert (await api.post("/codec/decode", content=sealed_body('"1"'), headers=headers)).status_code == 401
    monkeypatch.setenv("BILLING_CODEC_TRUST_LOCAL_UI", "1")
    response = await api.post("/codec/decode", content=sealed_body('"1"'), headers=headers)
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == UI
    assert (await api.post("/codec/decode", content=sealed_body('"1"'),
                           headers={"Origin": "http://evil.test"})).status_code == 401

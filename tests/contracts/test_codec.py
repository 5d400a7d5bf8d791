"""The payload codec (SPEC J1): AES-GCM, the key id in each payload, rotation, and nothing readable without a key."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload

from contracts.codec import ENCODING, KEY_ID, EncryptionCodec, UnknownKey, load_keys, new_key_line, parse_keys


def codec(*lines: str) -> EncryptionCodec:
    return EncryptionCodec(parse_keys(",".join(lines)))


OLD, NEW = new_key_line("k-old"), new_key_line("k-new")


def plain(data: bytes = b'{"email": "ada@example.test"}') -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


@given(st.binary(max_size=2000), st.dictionaries(st.sampled_from(["encoding", "messageType", "x"]),
                                                  st.binary(max_size=40)))
def test_round_trip_keeps_every_byte(data, metadata):
    c = codec(NEW)
    original = Payload(metadata=metadata, data=data)
    sealed = c.encode_one(original)
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID] == b"k-new"
    assert c.decode_one(sealed) == original


def test_nothing_of_the_payload_is_readable_and_each_seal_differs():
    c = codec(NEW)
    first, second = c.encode_one(plain()), c.encode_one(plain())
    for sealed in (first, second):
        assert b"ada@example.test" not in sealed.SerializeToString()
        assert b"json/plain" not in sealed.SerializeToString()  # the metadata is sealed too
    assert first.data != second.data  # a fresh nonce each time


def test_rotation_a_new_key_encrypts_old_keys_still_decrypt():
    before = codec(OLD)
    sealed_before = before.encode_one(plain())
    after = codec(NEW, OLD)
    assert after.encode_one(plain()).metadata[KEY_ID] == b"k-new"
    assert after.decode_one(sealed_before) == plain()
    with pytest.raises(UnknownKey, match="k-old"):
        codec(NEW).decode_one(sealed_before)  # the old key retired too early: said plainly, nothing guessed


def test_tampering_is_detected():
    c = codec(NEW)
    sealed = c.encode_one(plain())
    flipped = bytearray(sealed.data)
    flipped[-1] ^= 1
    with pytest.raises(InvalidTag):
        c.decode_one(Payload(metadata=dict(sealed.metadata), data=bytes(flipped)))
    # The key id is bound to the ciphertext: relabelling a payload with another key's id does not decrypt it.
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID: b"k-old"}, data=sealed.data)
    with pytest.raises(InvalidTag):
        codec(NEW, OLD).decode_one(relabelled)


def test_payloads_written_before_encryption_pass_through():
    assert codec(NEW).decode_one(plain()) == plain()
    assert asyncio.run(codec(NEW).decode([plain()])) == [plain()]


@pytest.mark.parametrize("text, message", [("nokey", "id:base64key"), ("a:" + "QUJD", "AES needs"),
                                           ("a:!!!", "base64|Incorrect padding|Non-base64|Only base64")])
def test_bad_key_configuration_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_keys(text)
    with pytest.raises(ValueError, match="at least one key"):
        EncryptionCodec([])


def test_the_embedded_default_creates_its_key_file_once(tmp_path, monkeypatch):
    monkeypatch.delenv("BILLING_CODEC_KEYS", raising=False)
    monkeypatch.delenv("BILLING_CODEC_KEY_FILE", raising=False)
    first = load_keys(tmp_path)
    assert (tmp_path / "codec-keys").stat().st_mode & 0o077 == 0  # readable by its owner only
    assert load_keys(tmp_path) == first

"""Payloads encrypted at rest in Temporal (SPEC J1): an AES-GCM payload codec with the key id in every payload,
several keys so that a new one encrypts while the old ones still decrypt, and the one data converter that every
client, worker, replayer and simulator uses.

Keys come from `BILLING_CODEC_KEYS` ("id:base64key,id:base64key", the first encrypts), or from the key file
`BILLING_CODEC_KEY_FILE` (default `<data dir>/codec-keys`, one `id:base64key` per line, the first encrypts), which
is created with a fresh key when missing, so the embedded default needs no setup. Rotation: put a new key first,
keep the old ones listed until no open workflow's history holds payloads under them (docs/runbook.md).
"""

from __future__ import annotations

import base64
import dataclasses
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class UnknownKey(ValueError):
    """A payload encrypted under a key this process was not given: add the key (rotation keeps old ones)."""


class EncryptionCodec(PayloadCodec):
    """AES-GCM over the whole serialized Payload (its metadata included), a random 96-bit nonce per payload."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("the codec needs at least one key")
        self.current = keys[0][0]
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}
        self._keys = dict(keys)
        if len(self._ciphers) != len(keys):
            raise ValueError("key ids must be unique")

    def derive_key(self, purpose: bytes) -> bytes:
        """A 256-bit key for another purpose (e.g. keyed hashes), derived from the current key with HKDF, so every
        process sharing the codec's keys derives the same one and no second secret needs handing out."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(self._keys[self.current])

    def encode_one(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.current].encrypt(nonce, payload.SerializeToString(), self.current.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: self.current.encode()}, data=nonce + sealed)

    def decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption (old histories) or by another codec: left as it is
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKey(f"payload encrypted under key {key_id!r}, which this process does not have")
        data = payload.data
        return Payload.FromString(cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], key_id.encode()))

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encode_one(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_one(p) for p in payloads]


def parse_keys(text: str) -> list[tuple[str, bytes]]:
    """`id:base64key` entries separated by commas or new lines; each key 128, 192 or 256 bits."""
    keys = []
    for entry in text.replace(",", "\n").splitlines():
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        key_id, sep, encoded = entry.partition(":")
        if not sep or not key_id:
            raise ValueError("a codec key is written id:base64key")
        key = base64.b64decode(encoded, validate=True)
        if len(key) not in (16, 24, 32):
            raise ValueError(f"codec key {key_id!r} is {len(key)} bytes: AES needs 16, 24 or 32")
        keys.append((key_id, key))
    return keys


def new_key_line(key_id: str | None = None) -> str:
    return f"{key_id or 'k' + secrets.token_hex(4)}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


def load_keys(data_dir: Path | None = None) -> list[tuple[str, bytes]]:
    if os.environ.get("BILLING_CODEC_KEYS"):
        return parse_keys(os.environ["BILLING_CODEC_KEYS"])
    path = Path(os.environ.get("BILLING_CODEC_KEY_FILE")
                or (data_dir or Path(os.environ.get("BILLING_DATA_DIR", "data"))) / "codec-keys")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # a racing process keeps the first file
        try:
            os.write(fd, (new_key_line() + "\n").encode())
        finally:
            os.close(fd)
    return parse_keys(path.read_text())


def data_converter(codec: EncryptionCodec | None = None) -> DataConverter:
    """Pydantic payloads, encrypted by `codec` (the configured keys by default); failure messages and stack
    traces are moved into an encoded payload too, so they are encrypted with the rest."""
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec or EncryptionCodec(load_keys()),
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)

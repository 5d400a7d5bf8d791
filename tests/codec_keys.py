"""The payload codec's keys in the suite (SPEC J1): fixed, so that histories recorded with them replay later.
Test-only keys; never used outside tests (the product reads BILLING_CODEC_KEYS or its key file)."""

import os

# Two keys, as after a rotation: "test-2" encrypts, "test-1" still decrypts what it sealed.
TEST_CODEC_KEYS = ("test-2:2n3lvYtQb8xJjKXqBq1n1O5h9cJm3cB1Xw2oQH9b7vE=,"
                   "test-1:Ck3q5wUo2m1gk5l8n0r3t6v9y2B5E8H1K4N7Q0T3W6Y=")


def use_test_keys() -> None:
    os.environ["BILLING_CODEC_KEYS"] = TEST_CODEC_KEYS

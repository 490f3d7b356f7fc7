"""The ``hmac`` signer: HMAC-SHA256 with shared secrets, kernel to kernel.

The envelope is auth's layout (`kernel_signing.envelope`); the signer field holds a key id (a
MAC of a fixed label under the key, so it reveals nothing of the key) and the MAC covers the
inner content type and encoding as well as the body, so neither can be swapped. Keys rotate: the
first signs, every one verifies; add the new key first, and drop the old one once no message it
signed can still be queued.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from kernel.interfaces import Unsigned
from kernel.plugin import ConfigurationError, DecodeError, Options
from kernel_signing.envelope import SEPARATOR, Envelope, pack, unpack

_KEY_ID_LABEL = b"kernel-signing hmac key id"


def _key_id(key: bytes) -> bytes:
    return hmac.digest(key, _KEY_ID_LABEL, "sha256")[:8].hex().encode()


def _mac(key: bytes, content_type: str, content_encoding: str, body: bytes) -> bytes:
    signed = hmac.new(key, content_type.encode(), hashlib.sha256)
    signed.update(SEPARATOR + content_encoding.encode() + SEPARATOR)
    signed.update(body)
    return signed.digest()


class HmacSigner:
    """Signs with the first of `keys`, verifies with whichever one the envelope names."""

    name = "hmac"
    content_encoding = "utf-8"

    def __init__(self, keys: Sequence[bytes], serializer: str = "json") -> None:
        if not keys:
            raise ConfigurationError("the hmac signer needs a shared secret: set hmac_keys to a "
                                     "list of secrets, the one to sign with first")
        if any(len(key) < 16 for key in keys):
            raise ConfigurationError("an hmac_keys secret is shorter than 16 bytes: use long "
                                     "random secrets (python -c 'import secrets; "
                                     "print(secrets.token_urlsafe(32))')")
        self._signing = (_key_id(keys[0]), bytes(keys[0]))
        self._keys = {_key_id(key): bytes(key) for key in keys}
        self.serializer = serializer

    def sign(self, body: bytes, content_type: str, content_encoding: str) -> bytes:
        key_id, key = self._signing
        return pack(Envelope(key_id, _mac(key, content_type, content_encoding, body),
                             content_type, content_encoding, body))

    def verify(self, data: bytes) -> Unsigned:
        envelope = unpack(data, "hmac")
        key = self._keys.get(envelope.signer)
        if key is None:
            raise DecodeError(f"signed with hmac key {envelope.signer.decode('ascii', 'replace')!r}"
                              f", which is not in hmac_keys: the sender's secret is not one "
                              f"this worker accepts")
        expected = _mac(key, envelope.content_type, envelope.content_encoding, envelope.body)
        if not hmac.compare_digest(expected, envelope.signature):
            raise DecodeError("the hmac signature does not match the message: it was altered or "
                              "signed with another secret")
        return Unsigned(envelope.body, envelope.content_type, envelope.content_encoding)


def from_settings(options: Options) -> HmacSigner:
    """The signer kernel's codec builds from ``hmac_keys`` and ``security_serializer``."""
    keys = options.get("hmac_keys") or []
    if isinstance(keys, (str, bytes)) or not all(isinstance(k, (str, bytes)) for k in keys):
        # Never the value in the sentence: it is a secret.
        raise ConfigurationError("hmac_keys must be a list of secrets (strings), the one to "
                                 "sign with first")
    return HmacSigner([key.encode() if isinstance(key, str) else key for key in keys],
                      serializer=options.get("security_serializer") or "json")

"""Celery's ``auth`` signer: RSA signatures of X.509 certificates' keys, checked against a store
of trusted certificates.

What is signed, as Celery: the serialized body only, with RSA-PSS (MGF1 and the salt as long as
the key allows) over ``security_digest``. A certificate is named by its issuer's attribute values
and its serial number (``"<issuer values, space-separated> <serial>"``), the id the envelope
carries. A message is refused when that id is not in the store, when the certificate is expired
or not yet valid at the moment of checking, or when the signature does not verify.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kernel.interfaces import Unsigned
from kernel.plugin import ConfigurationError, DecodeError, Options
from kernel_signing.envelope import Envelope, pack, unpack

log = logging.getLogger("kernel.signing")


def certificate_id(cert: x509.Certificate) -> str:
    """The id Celery's envelope names a certificate by: issuer values, then the serial."""
    issuer = " ".join(str(attribute.value) for attribute in cert.issuer)
    return f"{issuer} {cert.serial_number}"


def digest_named(name: str) -> hashes.HashAlgorithm:
    """The hash `security_digest` names (Celery's spelling: ``sha256``, ``sha512``...)."""
    algorithm = getattr(hashes, name.upper(), None)
    if not (isinstance(algorithm, type) and issubclass(algorithm, hashes.HashAlgorithm)):
        raise ConfigurationError(f"security_digest {name!r} is not a hash cryptography knows: "
                                 f"use sha256 (the default), sha384 or sha512")
    return algorithm()


def _read(setting: str, path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise ConfigurationError(f"{setting} names {path!r}, which cannot be read "
                                 f"({exc.strerror}): point {setting} at a PEM file this "
                                 f"process can read") from None


def load_key(path: str, password: str | bytes | None) -> rsa.RSAPrivateKey:
    """The RSA private key in PEM file `path`, with a sentence for each way it can fail."""
    data = _read("security_key", path)
    secret = password.encode() if isinstance(password, str) else password
    try:
        key = serialization.load_pem_private_key(data, password=secret)
    except TypeError:
        # cryptography's TypeError: a password given for a plain key, or missing for an
        # encrypted one.
        if secret is None:
            raise ConfigurationError(f"the private key {path!r} is encrypted: set "
                                     f"security_key_password") from None
        raise ConfigurationError(f"the private key {path!r} is not encrypted: unset "
                                 f"security_key_password") from None
    except (ValueError, UnsupportedAlgorithm):
        if secret is not None and b"ENCRYPTED" in data:
            raise ConfigurationError(f"security_key_password does not decrypt the private key "
                                     f"{path!r}: set the password it was encrypted with") from None
        raise ConfigurationError(f"security_key {path!r} is not a PEM private key: point it "
                                 f"at the key file (BEGIN PRIVATE KEY)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError(f"the private key {path!r} is not an RSA key: Celery's auth "
                                 f"signatures are RSA only; make an RSA key")
    return key


def load_certificates(setting: str, path: str) -> list[x509.Certificate]:
    """The certificates in PEM file `path` (one or more), RSA ones only."""
    data = _read(setting, path)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigurationError(f"{setting}: {path!r} holds no PEM certificate (BEGIN "
                                 f"CERTIFICATE); remove it or put the certificate there") from None
    for cert in certs:
        if not isinstance(cert.public_key(), rsa.RSAPublicKey):
            raise ConfigurationError(f"{setting}: the certificate in {path!r} is not for an RSA "
                                     f"key: Celery's auth signatures are RSA only")
    return certs


def load_store(pattern: str) -> dict[str, x509.Certificate]:
    """The trusted certificates of `security_cert_store` (a directory or a glob), by id. An
    expired one is kept, with a warning, so its messages are refused as expired."""
    if os.path.isdir(pattern):
        pattern = os.path.join(pattern, "*")
    store: dict[str, x509.Certificate] = {}
    for path in sorted(glob.glob(pattern)):
        for cert in load_certificates("security_cert_store", path):
            cert_id = certificate_id(cert)
            if store.get(cert_id, cert) != cert:
                raise ConfigurationError(f"security_cert_store: two different certificates "
                                         f"are named {cert_id!r} (issuer and serial); remove "
                                         f"one of them ({path!r} is one)")
            if cert.not_valid_after_utc <= datetime.now(timezone.utc):
                log.warning("trusted certificate %r (%s) expired on %s: its messages will be "
                            "refused", cert_id, path, cert.not_valid_after_utc)
            store[cert_id] = cert
    if not store:
        raise ConfigurationError(f"security_cert_store {pattern!r} holds no certificate: point "
                                 f"it at a directory or glob of the PEM certificates whose "
                                 f"signatures this app trusts")
    return store


class X509Signer:
    """Signs with a private key and its certificate; verifies against trusted certificates.
    Either half may be absent (a client that only sends, a worker that only checks): using it
    is then the error, with the settings to set."""

    name = "auth"
    content_encoding = "utf-8"

    def __init__(self, *, key: rsa.RSAPrivateKey | None = None,
                 certificate: x509.Certificate | None = None,
                 store: Mapping[str, x509.Certificate] | None = None, digest: str = "sha256",
                 serializer: str = "json") -> None:
        if (key is None) != (certificate is None):
            raise ConfigurationError("signing with auth needs both security_key and "
                                     "security_certificate: set the one missing")
        if key is not None and certificate is not None and (
                key.public_key() != certificate.public_key()):
            raise ConfigurationError("security_certificate is not the certificate of "
                                     "security_key (their public keys differ): give the "
                                     "certificate issued for that key")
        self._key = key
        self._id = certificate_id(certificate).encode() if certificate is not None else None
        self._store = dict(store) if store is not None else None
        self._digest = digest_named(digest)
        self.serializer = serializer

    def _padding(self) -> padding.PSS:
        return padding.PSS(mgf=padding.MGF1(self._digest), salt_length=padding.PSS.MAX_LENGTH)

    def sign(self, body: bytes, content_type: str, content_encoding: str) -> bytes:
        if self._key is None or self._id is None:
            raise ConfigurationError("this app sends auth-signed tasks but has no key: set "
                                     "security_key and security_certificate")
        signature = self._key.sign(body, self._padding(), self._digest)
        return pack(Envelope(self._id, signature, content_type, content_encoding, body))

    def verify(self, data: bytes) -> Unsigned:
        if self._store is None:
            raise DecodeError("this worker accepts auth-signed tasks but trusts no certificate: "
                              "set security_cert_store")
        envelope = unpack(data, "auth")
        cert_id = envelope.signer.decode("utf-8", "replace")
        cert = self._store.get(cert_id)
        if cert is None:
            raise DecodeError(f"signed by certificate {cert_id!r}, which is not in the trusted "
                              f"store (security_cert_store): add its certificate there if you "
                              f"trust its holder")
        now = datetime.now(timezone.utc)
        if now >= cert.not_valid_after_utc:
            raise DecodeError(f"signed by certificate {cert_id!r}, which expired on "
                              f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: the sender "
                              f"needs a renewed certificate")
        if now < cert.not_valid_before_utc:
            raise DecodeError(f"signed by certificate {cert_id!r}, which is not valid before "
                              f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
        public_key = cert.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)  # load_certificates keeps RSA only
        try:
            public_key.verify(envelope.signature, envelope.body, self._padding(), self._digest)
        except InvalidSignature:
            raise DecodeError(f"the signature of {cert_id!r} does not match the body: the "
                              f"message was altered or signed with another key") from None
        return Unsigned(envelope.body, envelope.content_type, envelope.content_encoding)


def from_settings(options: Options) -> X509Signer:
    """The signer kernel's codec builds from the ``security_*`` settings."""
    settings: Mapping[str, Any] = options
    key_path, cert_path = settings.get("security_key"), settings.get("security_certificate")
    store_path = settings.get("security_cert_store")
    if not (key_path or cert_path or store_path):
        raise ConfigurationError("the auth signer signs with security_key and "
                                 "security_certificate and verifies with security_cert_store: "
                                 "set them (paths of PEM files; the store a directory or glob)")
    certificate = None
    if cert_path:
        [certificate, *_] = load_certificates("security_certificate", cert_path)
        if certificate.not_valid_after_utc <= datetime.now(timezone.utc):
            log.warning("security_certificate %r expired on %s: workers will refuse the tasks "
                        "it signs", cert_path, certificate.not_valid_after_utc)
    return X509Signer(
        key=load_key(key_path, settings.get("security_key_password")) if key_path else None,
        certificate=certificate,
        store=load_store(store_path) if store_path else None,
        digest=settings.get("security_digest") or "sha256",
        serializer=settings.get("security_serializer") or "json")

"""Certificates for tests: a CA and the certificates it issues, written as PEM files, made with
cryptography on the spot (nothing secret is checked in). For the plugin's tests and for users
testing their own signed setup."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Identity:
    """A key and its certificate, and the PEM files holding them."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    key_path: Path
    cert_path: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kernel tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(directory: Path, name: str, key: rsa.RSAPrivateKey, cert: x509.Certificate,
           password: bytes | None) -> Identity:
    directory.mkdir(parents=True, exist_ok=True)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password
        else serialization.NoEncryption())
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8, encryption))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Identity(key, cert, key_path, cert_path)


def make_ca(directory: Path, name: str = "kernel test CA") -> Identity:
    """A self-signed CA, valid for a year around now."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return _write(directory, "ca", key, cert, None)


def issue(ca: Identity, directory: Path, name: str, *, valid_from: timedelta = timedelta(days=-1),
          valid_for: timedelta = timedelta(days=30), password: bytes | None = None) -> Identity:
    """A certificate for a new RSA key, issued by `ca`, valid from now + `valid_from` for
    `valid_for` (an expired one: ``valid_from=-timedelta(days=10), valid_for=timedelta(days=1)``).
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = datetime.now(timezone.utc) + valid_from
    cert = (x509.CertificateBuilder().subject_name(_name(name))
            .issuer_name(ca.certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + valid_for)
            .sign(ca.key, hashes.SHA256()))
    return _write(directory, name, key, cert, password)


@dataclass(frozen=True)
class Pki:
    """What the plugin's tests sign with: a CA's certificates for a signer, a colleague, an
    expired one and one with an encrypted key, all in the trusted `store`, and one from
    another CA that the store does not hold."""

    ca: Identity
    signer: Identity
    colleague: Identity
    expired: Identity
    encrypted: Identity
    untrusted: Identity
    #: the trusted store: a directory of PEM certificates.
    store: Path

    #: the password of `encrypted`'s key.
    password = "open sesame"

    def settings(self, identity: Identity | None = None) -> dict[str, str]:
        """The kernel (and Celery) settings that sign as `identity` (the signer by default)
        and trust the store."""
        identity = identity or self.signer
        return {"security_key": str(identity.key_path),
                "security_certificate": str(identity.cert_path),
                "security_cert_store": str(self.store)}


def make_pki(root: Path) -> Pki:
    """A fresh `Pki` under `root`."""
    ca = make_ca(root / "ca")
    keys = root / "keys"
    signer, colleague = issue(ca, keys, "signer"), issue(ca, keys, "colleague")
    expired = issue(ca, keys, "expired", valid_from=-timedelta(days=10),
                    valid_for=timedelta(days=1))
    encrypted = issue(ca, keys, "encrypted", password=Pki.password.encode())
    untrusted = issue(make_ca(root / "other-ca", "another CA"), keys, "untrusted")
    store = root / "store"
    store.mkdir(parents=True, exist_ok=True)
    for identity in (signer, colleague, expired, encrypted):
        (store / identity.cert_path.name).write_bytes(identity.cert_path.read_bytes())
    return Pki(ca, signer, colleague, expired, encrypted, untrusted, store)

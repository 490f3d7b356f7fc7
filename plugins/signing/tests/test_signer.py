"""The signers on their own: kernel's conformance suite, byte-for-byte agreement with Celery's
auth serializer both ways, each refusal with its reason, and each bad setting as a sentence."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from celery.exceptions import SecurityError
from celery.security.certificate import Certificate, FSCertStore
from celery.security.key import PrivateKey
from celery.security.serialization import SecureSerializer

from kernel.interfaces import Signer
from kernel.plugin import ConfigurationError, DecodeError
from kernel.testing import SignerSuite
from kernel_signing.envelope import SEPARATOR
from kernel_signing.shared import HmacSigner
from kernel_signing.shared import from_settings as hmac_from_settings
from kernel_signing.x509 import X509Signer, certificate_id, from_settings
from kernel_signing.testing import Pki

BODY = b'[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'


def x509_signer(pki: Pki, identity_name: str = "signer", **settings: object) -> X509Signer:
    identity = getattr(pki, identity_name)
    return from_settings({**pki.settings(identity), **settings})


def celery_serializer(pki: Pki, identity_name: str = "signer") -> SecureSerializer:
    identity = getattr(pki, identity_name)
    return SecureSerializer(PrivateKey(identity.key_path.read_text()),
                            Certificate(identity.cert_path.read_text()),
                            FSCertStore(str(pki.store / "s*.pem")), "sha256", "json")


class TestX509Signer(SignerSuite):
    @pytest.fixture
    def signer(self, pki: Pki) -> Signer:
        return x509_signer(pki)

    @pytest.fixture
    def other_signer(self, pki: Pki) -> Signer:
        return x509_signer(pki, "untrusted")


class TestHmacSigner(SignerSuite):
    @pytest.fixture
    def signer(self) -> Signer:
        return HmacSigner([b"the current secret", b"the previous secret"])

    @pytest.fixture
    def other_signer(self) -> Signer:
        return HmacSigner([b"a secret the first one does not know"])


# ---------------------------------------------------------------- Celery's wire format


def test_the_certificate_id_is_celerys(pki: Pki) -> None:
    theirs = Certificate(pki.signer.cert_path.read_text()).get_id()
    assert certificate_id(pki.signer.certificate) == theirs


def test_celerys_auth_serializer_verifies_what_kernel_signs(pki: Pki) -> None:
    signed = x509_signer(pki).sign(BODY, "application/json", "utf-8")
    assert celery_serializer(pki).deserialize(signed.decode()) == json.loads(BODY)


def test_kernel_verifies_what_celerys_auth_serializer_signs(pki: Pki) -> None:
    signed = celery_serializer(pki).serialize([[2, 3], {"k": "é"}, {}])
    unsigned = x509_signer(pki).verify(signed.encode())
    assert (unsigned.content_type, unsigned.content_encoding) == ("application/json", "utf-8")
    assert json.loads(unsigned.body) == [[2, 3], {"k": "é"}, {}]


def test_the_envelope_layout(pki: Pki) -> None:
    signed = x509_signer(pki).sign(BODY, "application/json", "utf-8")
    signer, signature, content_type, encoding, body = base64.b64decode(signed).split(
        SEPARATOR, 4)
    assert base64.b64decode(signer).decode() == certificate_id(pki.signer.certificate)
    assert len(base64.b64decode(signature)) == 256, "an RSA-2048 signature"
    assert (content_type, encoding, body) == (b"application/json", b"utf-8", BODY)


# ---------------------------------------------------------------- refusals


def test_a_certificate_not_in_the_store_is_refused(pki: Pki) -> None:
    signed = x509_signer(pki, "untrusted").sign(BODY, "application/json", "utf-8")
    with pytest.raises(DecodeError, match="not in the trusted store"):
        x509_signer(pki).verify(signed)


def test_an_expired_certificate_is_refused_though_in_the_store(pki: Pki) -> None:
    signed = x509_signer(pki, "expired").sign(BODY, "application/json", "utf-8")
    with pytest.raises(DecodeError, match="expired on"):
        x509_signer(pki).verify(signed)


def test_a_signature_by_a_trusted_id_with_another_key_is_refused(pki: Pki) -> None:
    # The colleague's signature under the signer's certificate id: a forged envelope.
    forged = base64.b64decode(x509_signer(pki, "colleague").sign(BODY, "application/json",
                                                                 "utf-8"))
    _, rest = forged.split(SEPARATOR, 1)
    signer_id = base64.b64encode(certificate_id(pki.signer.certificate).encode())
    with pytest.raises(DecodeError, match="does not match the body"):
        x509_signer(pki).verify(base64.b64encode(signer_id + SEPARATOR + rest))


def test_a_tampered_body_is_refused(pki: Pki) -> None:
    raw = base64.b64decode(x509_signer(pki).sign(BODY, "application/json", "utf-8"))
    with pytest.raises(DecodeError, match="does not match the body"):
        x509_signer(pki).verify(base64.b64encode(raw.replace(b"[2, 3]", b"[2, 4]")))


def test_hmac_covers_the_inner_content_type(pki: Pki) -> None:
    signer = HmacSigner([b"the current secret"])
    raw = base64.b64decode(signer.sign(BODY, "application/json", "utf-8"))
    swapped = base64.b64encode(raw.replace(b"application/json", b"application/x-yaml"))
    with pytest.raises(DecodeError, match="does not match"):
        signer.verify(swapped)


def test_hmac_keys_rotate_the_first_signs_every_one_verifies() -> None:
    old = HmacSigner([b"the previous secret"])
    rotated = hmac_from_settings({"hmac_keys": ["the current secret", "the previous secret"]})
    in_flight = old.sign(BODY, "application/json", "utf-8")
    assert rotated.verify(in_flight).body == BODY, "a message signed before the rotation"
    new = rotated.sign(BODY, "application/json", "utf-8")
    assert HmacSigner([b"the current secret"]).verify(new).body == BODY, "the first signs"
    with pytest.raises(DecodeError, match="not in hmac_keys"):
        old.verify(new)


# ---------------------------------------------------------------- bad settings


def test_a_missing_key_file_is_a_sentence(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="security_key names .* cannot be read"):
        x509_signer(pki, security_key=str(tmp_path / "nowhere.key"))


def test_a_wrong_or_missing_password_is_a_sentence(pki: Pki) -> None:
    with pytest.raises(ConfigurationError, match="does not decrypt"):
        x509_signer(pki, "encrypted", security_key_password="wrong")
    with pytest.raises(ConfigurationError, match="is encrypted: set security_key_password"):
        x509_signer(pki, "encrypted")
    with pytest.raises(ConfigurationError, match="not encrypted: unset"):
        x509_signer(pki, security_key_password="needless")
    right = x509_signer(pki, "encrypted", security_key_password=pki.password)
    assert right.verify(right.sign(b"x", "application/json", "utf-8")).body == b"x"


def test_a_certificate_of_another_key_is_a_sentence(pki: Pki) -> None:
    with pytest.raises(ConfigurationError, match="is not the certificate of security_key"):
        x509_signer(pki, security_certificate=str(pki.colleague.cert_path))


def test_an_empty_store_is_a_sentence(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="holds no certificate"):
        x509_signer(pki, security_cert_store=str(tmp_path))


def test_a_store_file_that_is_not_a_certificate_is_a_sentence(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="notes.txt' holds no PEM certificate"):
        x509_signer(pki, security_cert_store=str(tmp_path))


def test_a_key_that_is_not_pem_is_a_sentence(pki: Pki) -> None:
    with pytest.raises(ConfigurationError, match="is not a PEM private key"):
        x509_signer(pki, security_key=str(pki.signer.cert_path))


def test_an_unknown_digest_is_a_sentence(pki: Pki) -> None:
    with pytest.raises(ConfigurationError, match="security_digest 'sha257'"):
        x509_signer(pki, security_digest="sha257")


def test_signing_without_a_key_and_verifying_without_a_store_are_sentences(pki: Pki) -> None:
    only_store = from_settings({"security_cert_store": str(pki.store)})
    with pytest.raises(ConfigurationError, match="set security_key and security_certificate"):
        only_store.sign(BODY, "application/json", "utf-8")
    only_key = from_settings({"security_key": str(pki.signer.key_path),
                              "security_certificate": str(pki.signer.cert_path)})
    with pytest.raises(DecodeError, match="set security_cert_store"):
        only_key.verify(only_key.sign(BODY, "application/json", "utf-8"))


def test_hmac_keys_are_checked_without_showing_them() -> None:
    with pytest.raises(ConfigurationError, match="set hmac_keys") as empty:
        hmac_from_settings({})
    with pytest.raises(ConfigurationError, match="shorter than 16 bytes") as short:
        hmac_from_settings({"hmac_keys": ["hunter2"]})
    assert "hunter2" not in str(short.value) + str(empty.value)


def test_celery_refuses_an_expired_certificate_in_its_store_where_kernel_keeps_it(
        pki: Pki) -> None:
    # What differs: Celery will not start with it; kernel starts and refuses its messages.
    with pytest.raises(SecurityError, match="Expired"):
        FSCertStore(str(pki.store))
    assert x509_signer(pki) is not None

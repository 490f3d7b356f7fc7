"""Entry point of kernel-signing (``kernel.plugins``: ``signing``). Kept light: the signers, and
cryptography with them, are imported by the factories, when a codec first needs one."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, SettingSpec, SignerSpec, hookimpl

#: Celery's auth serializer's content type (its name in accept_content is ``auth``).
AUTH_CONTENT_TYPE = "application/data"
#: kernel's own: a Celery worker refuses it rather than mistaking it for an auth message.
HMAC_CONTENT_TYPE = "application/x-kernel-hmac"


@hookimpl
def kernel_signers() -> Iterable[SignerSpec]:
    yield SignerSpec("auth", Lazy("kernel_signing.x509:from_settings"),
                     AUTH_CONTENT_TYPE)
    yield SignerSpec("hmac", Lazy("kernel_signing.shared:from_settings"),
                     HMAC_CONTENT_TYPE)


@hookimpl
def kernel_settings() -> Iterable[SettingSpec]:
    # Celery's names and meanings (paths, as its setup_security reads them).
    yield SettingSpec("security_key", str | None, None,
                      "path of the PEM private key that signs this app's tasks")
    yield SettingSpec("security_key_password", str | bytes | None, None,
                      "password of security_key, if it is encrypted", secret=True)
    yield SettingSpec("security_certificate", str | None, None,
                      "path of the PEM X.509 certificate of security_key")
    yield SettingSpec("security_cert_store", str | None, None,
                      "trusted certificates: a directory or a glob of PEM files")
    yield SettingSpec("security_digest", str, "sha256",
                      "the hash of the signatures (a cryptography hashes name)")
    yield SettingSpec("security_serializer", str, "json",
                      "the serializer whose output auth and hmac sign")
    yield SettingSpec("hmac_keys", list, [],
                      "shared secrets of the hmac signer, newest first: tasks are signed with "
                      "the first and accepted if signed with any", secret=True)

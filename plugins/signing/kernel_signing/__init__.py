"""kernel-signing: signed task messages for kernel.

``auth`` is Celery's auth serializer, wire-compatible: an RSA signature (PSS) over the serialized
body, made with an X.509 certificate's private key and checked against a store of trusted
certificates, so Celery and kernel clients and workers sign and verify each other's tasks.
``hmac`` signs with a shared secret instead (kernel to kernel), with a list of keys for
rotation. The entry-point module is `kernel_signing.plugin`; cryptography is imported only when
a signer is first built.
"""

from __future__ import annotations

__version__ = "0.1.0"

"""kernel-amqp: RabbitMQ for kernel: the transport (``amqp://``, ``amqps://``, ``pyamqp://``)
and the rpc result store (``rpc://``).

Kept light: the entry point `kernel_amqp.plugin` names kombu and py-amqp only inside the
factories.
"""

from __future__ import annotations

__version__ = "0.1.0"

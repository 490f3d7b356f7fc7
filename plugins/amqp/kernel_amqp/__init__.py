"""kernel-amqp: the RabbitMQ transport for kernel (``amqp://``, ``amqps://``, ``pyamqp://``).

Kept light: the entry point `kernel_amqp.plugin` names kombu and py-amqp only inside the
transport factory.
"""

from __future__ import annotations

__version__ = "0.1.0"

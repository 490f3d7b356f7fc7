"""kernel-example: A result store for kernel (example)."""

__version__ = "0.1.0"

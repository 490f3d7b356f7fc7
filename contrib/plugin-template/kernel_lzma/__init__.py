"""LZMA (xz) compression for kernel."""

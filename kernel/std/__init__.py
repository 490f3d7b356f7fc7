"""Plugins that need only the standard library. Shipped with kernel, registered through the same
``kernel.plugins`` entry points as any other plugin (see pyproject.toml)."""

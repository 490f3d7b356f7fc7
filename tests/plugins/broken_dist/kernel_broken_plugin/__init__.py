"""Entry-point module of a plugin whose native dependency is missing."""

raise ImportError("needs libfoo")

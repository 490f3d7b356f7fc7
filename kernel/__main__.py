"""``python -m kernel``: the same as the ``kernel`` command."""

from kernel.cli import main

if __name__ == "__main__":
    main()

"""``python -m meridian``: the same as the ``meridian`` command."""

from .cli.app import main

if __name__ == "__main__":
    main()

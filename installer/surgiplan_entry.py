"""Entry script of the bundled program: the ``surgiplan`` command (no arguments: the app)."""

from surgiplan.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())

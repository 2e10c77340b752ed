"""Entry script of the bundled program: the ``surgiplan`` command (no arguments: the app)."""

import multiprocessing

from surgiplan.cli.main import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # third-party plug-ins run in spawn-ed child processes
    raise SystemExit(main())

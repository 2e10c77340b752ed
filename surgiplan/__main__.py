"""``python -m surgiplan`` is the ``surgiplan`` command."""

from surgiplan.cli.main import main

raise SystemExit(main())

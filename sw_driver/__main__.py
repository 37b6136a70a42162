"""``python -m sw_driver``: the ``recnmp`` command line."""

from .cli import main

raise SystemExit(main())

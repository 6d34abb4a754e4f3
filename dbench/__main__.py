"""``python -m dbench``: the ``dbench`` command line."""

from dbench._cli.main import main

raise SystemExit(main())

"""``python -m layerkit``: run the ``layerkit`` command (as the console script does)."""

from layerkit_cli import main

raise SystemExit(main())

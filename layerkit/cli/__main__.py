"""`python -m layerkit.cli`: run the `layerkit` command."""

from layerkit.cli.app import main

raise SystemExit(main())

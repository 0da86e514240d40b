"""`python -m notifier` runs the same CLI as the `datasaur-notifier` script."""

from notifier.cli import main

raise SystemExit(main())

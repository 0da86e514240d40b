"""``python -m bench``: run the benchmark (``--help`` for options)."""

import sys

from bench.cli import main

sys.exit(main())

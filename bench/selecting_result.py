"""The daemon as it was before issue 20: every poll selects ``result`` too.

``python -m bench.selecting_result -c CONFIG run``, for the ``result_path`` scenario's
"before" figures, measured in the same run as today's daemon.
"""

from __future__ import annotations

import sys

from notifier.cli import main
from notifier.datasaur import DatasaurClient
from notifier.datasaur_answers import SELECTION_TIERS

if __name__ == "__main__":
    DatasaurClient.tiers = tuple(f"{fields} result" for fields in SELECTION_TIERS)
    sys.exit(main())

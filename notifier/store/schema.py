"""Each backend's schema: numbered SQL steps under ``migrations/<backend>/``."""

from __future__ import annotations

from pathlib import Path


def migrations(backend: str) -> list[tuple[int, str, str]]:
    """``(number, name, sql)`` of ``migrations/<backend>/NNNN_name.sql``, in order."""
    folder = Path(__file__).with_name("migrations") / backend
    steps = []
    for path in sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        number, _, name = path.stem.partition("_")
        steps.append((int(number), name, path.read_text(encoding="utf-8")))
    return steps

"""The wheel holds every package and data file: a non-editable install works."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_an_installed_copy_opens_both_stores_schemas(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "site"
    source.mkdir()  # a copy, so that the build leaves nothing in the checkout
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(
        ROOT / "notifier", source / "notifier", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(source)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )  # fmt: skip
    probe = (
        "import sys, notifier.store.postgres, notifier.cli\n"
        "from pathlib import Path\n"
        "from notifier.store import SqliteStore\n"
        "from notifier.store.schema import migrations\n"
        "assert notifier.store.postgres.__file__.startswith(sys.argv[1])\n"
        "print(len(migrations('sqlite')), len(migrations('postgres')))\n"
        "SqliteStore(Path('state.db')).close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(target)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    sqlite_steps, postgres_steps = map(int, done.stdout.split())
    assert sqlite_steps == len(list((ROOT / "notifier/store/migrations/sqlite").glob("*.sql")))
    assert postgres_steps == len(list((ROOT / "notifier/store/migrations/postgres").glob("*.sql")))

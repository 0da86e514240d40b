"""What the daemon warns about its config, at start and on every reload: a config file
that other users can read, and pending deliveries for a callback it no longer has."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

from notifier.callback_urls import CALLBACK_PREFIX
from notifier.config import Config, secrets_of
from notifier.store import Store

log = logging.getLogger("notifier.daemon")  # the daemon's lines, wherever they are made


def warn_if_readable(path: Path, config: Config) -> None:
    """The config may hold secrets: say so if other users can read it.

    A warning when a secret is written in the file itself; only a note when every secret
    comes from elsewhere (``${credential:...}``, ``${file:...}``, ``${VAR}``).
    """
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return
    if not mode & stat.S_IROTH:
        return
    if any(secret in text for secret in secrets_of(config)):
        log.warning(
            "config file %s is readable by other users and holds secrets: chmod o-r it, or"
            " take the secrets from ${credential:NAME}, ${file:/path} or ${VAR}",
            path,
        )
    else:
        log.info("config file %s is readable by other users (it holds no secret itself)", path)


def warn_about_orphans(store: Store, config: Config) -> None:
    """Pending deliveries to a callback no longer configured wait for it: say so."""
    for callback, count in store.pending_by_callback().items():
        if config.api is not None and callback.startswith(CALLBACK_PREFIX):
            continue
        if callback not in config.callbacks:
            log.warning(
                "%d pending deliveries are for callback %r, which is not configured; "
                "they stay pending until it is configured again",
                count,
                callback,
            )

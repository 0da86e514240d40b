"""The status page: plain HTML, CSS and JavaScript shipped in the package (``ui/``).

The files hold no data (the page fetches everything from ``/v1/...`` with the token
the user types), so they are served without a token. Only files of ``ui/`` and of its
folders in :data:`FOLDERS` (the script's modules, ``ui/js/``) with a known type are
served; nothing else on disk is reachable from here.
"""

from __future__ import annotations

import re
from importlib import resources

import falcon

UI = resources.files("notifier.api") / "ui"
TYPES = {
    "html": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
}
NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\.(" + "|".join(TYPES) + ")")
FOLDERS = ("js",)  # listed in pyproject.toml's package-data too


class ToPage:
    """``/`` and ``/ui``: a redirect to the page (relative, so it works behind a prefix)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = 302
        resp.location = "ui/"  # from "/" and from "/ui" alike: "/ui/"
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = ""

    on_head = on_get


class UiFiles:
    """The files of ``ui/`` (``/ui/`` is the page) or of one of its :data:`FOLDERS`."""

    def __init__(self, folder: str | None = None) -> None:
        self.root = UI if folder is None else UI / folder

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str = "index.html") -> None:
        match = NAME.fullmatch(name)
        resource = self.root / name
        if match is None or not resource.is_file():
            raise falcon.HTTPNotFound()
        resp.content_type = TYPES[match.group(1)]
        resp.cache_control = ["no-cache"]
        resp.data = resource.read_bytes()

    on_head = on_get


def routes() -> list[tuple[str, object]]:
    """Each URI template of the page and what serves it."""
    to_page, files = ToPage(), UiFiles()
    found: list[tuple[str, object]] = [
        ("/", to_page),
        ("/ui", to_page),
        ("/ui/", files),
        ("/ui/{name}", files),
    ]
    found += [(f"/ui/{folder}/{{name}}", UiFiles(folder)) for folder in FOLDERS]
    return found

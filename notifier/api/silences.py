"""``/v1/silences``: add, list and expire silences (see :mod:`notifier.silences`).

The body of ``POST`` is the CLI's words; the silence's author is the token's name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import falcon

from notifier.api.parsing import INVALID, ApiError, detail, read_json, validate
from notifier.silences import SilenceRequest, new_silence, silence_document

if TYPE_CHECKING:
    from notifier.api.app import Api, Caller

log = logging.getLogger("notifier.api.app")


class SilenceHandlers:
    """The handlers of the silence endpoints, bound to the :class:`~notifier.api.app.Api`."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def routes(self) -> dict[tuple[str, str], Callable[..., None]]:
        """Each (path, method) of :data:`~notifier.api.openapi.ENDPOINTS` this module serves."""
        return {
            ("/v1/silences", "post"): self.add,
            ("/v1/silences", "get"): self.list_all,
            ("/v1/silences/{silence_id}", "delete"): self.expire,
        }

    def add(self, req: falcon.Request, resp: falcon.Response, caller: Caller | None) -> None:
        assert caller is not None
        request = validate(SilenceRequest, read_json(req))
        now = self.api.clock()
        silence, problems = new_silence(request, now, caller.name, self.api.callbacks)
        if silence is None:
            raise ApiError(422, INVALID, [detail(path, message) for path, message in problems])
        self.api.store.add_silence(silence)
        log.info("api: token %r added silence %s", caller.name, silence.id)
        resp.status = 201
        resp.media = {"silence": silence_document(silence)}

    def list_all(self, req: falcon.Request, resp: falcon.Response, caller: Caller | None) -> None:
        resp.media = {"silences": [silence_document(s) for s in self.api.store.silences()]}

    def expire(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        caller: Caller | None,
        silence_id: str,
    ) -> None:
        assert caller is not None
        silence = self.api.store.expire_silence(silence_id, self.api.clock())
        if silence is None:
            raise ApiError(404, f"no silence {silence_id!r}")
        log.info("api: token %r expired silence %s", caller.name, silence.id)
        resp.media = {"silence": silence_document(silence)}

"""``POST /v1/jobs/{id}/ack`` and ``/v1/groups/{id}/ack``: acknowledge a job or a group,
so that its reminders stop.

The ack's author is the token's name; the body (``{"comment": ...}``) may be empty. An id
no job (group) has is a 422 naming ``job_id`` (``group_id``): the issue's bad-input rule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import falcon

from notifier.api.models import AckRequest
from notifier.api.parsing import INVALID, ApiError, detail, read_json, validate
from notifier.reminders import acknowledge

if TYPE_CHECKING:
    from notifier.api.app import Api, Caller

log = logging.getLogger("notifier.api.app")


class AckHandlers:
    """The handlers of the ack endpoints, bound to the :class:`~notifier.api.app.Api`."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def routes(self) -> dict[tuple[str, str], Callable[..., None]]:
        """Each (path, method) of :data:`~notifier.api.openapi.ENDPOINTS` this module serves."""
        return {
            ("/v1/jobs/{job_id}/ack", "post"): self.ack_job,
            ("/v1/groups/{group_id}/ack", "post"): self.ack_group,
        }

    def ack_job(
        self, req: falcon.Request, resp: falcon.Response, caller: Caller | None, job_id: str
    ) -> None:
        self._ack(req, resp, caller, job_id, "job")

    def ack_group(
        self, req: falcon.Request, resp: falcon.Response, caller: Caller | None, group_id: str
    ) -> None:
        self._ack(req, resp, caller, group_id, "group")

    def _ack(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        caller: Caller | None,
        subject: str,
        kind: str,
    ) -> None:
        assert caller is not None
        empty = not req.content_length and req.content_type is None
        body = AckRequest() if empty else validate(AckRequest, read_json(req))
        ack = acknowledge(
            self.api.store, subject, caller.name, self.api.clock(), body.comment, kind
        )
        if ack is None:  # a bad reference in the request: 422 naming it, as the issue says
            raise ApiError(422, INVALID, [detail(f"{kind}_id", f"no {kind} {subject!r} is known")])
        log.info("api: token %r acknowledged %s %s", caller.name, kind, subject)
        resp.media = {"ack": ack.document()}

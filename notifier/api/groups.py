"""``/v1/groups``: declare, list, read, seal and delete groups (issue 21.2).

``PUT`` creates or updates (the fields given replace the stored ones; ``sealed: true``
seals, and sealing is one-way); ``notify`` must name configured callbacks and
``callback_url`` match an allowed prefix, as for jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import falcon

from notifier.api import models
from notifier.api.group_models import GroupsQuery
from notifier.api.parsing import INVALID, ApiError, detail, read_json, validate, validate_query
from notifier.groups import GroupSpec, GroupView, group_document
from notifier.jobfields import label_filter
from notifier.reminders import ack_document
from notifier.report import job_document

if TYPE_CHECKING:
    from notifier.api.app import Api, Caller

log = logging.getLogger("notifier.api.app")


class GroupHandlers:
    """The handlers of the group endpoints, bound to the :class:`~notifier.api.app.Api`."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def routes(self) -> dict[tuple[str, str], Callable[..., None]]:
        """Each (path, method) of :data:`~notifier.api.openapi.ENDPOINTS` this module serves."""
        return {
            ("/v1/groups", "get"): self.list_all,
            ("/v1/groups/{group_id}", "get"): self.get,
            ("/v1/groups/{group_id}", "put"): self.put,
            ("/v1/groups/{group_id}", "delete"): self.delete,
            ("/v1/groups/{group_id}/seal", "post"): self.seal,
        }

    def _document(self, view: GroupView) -> dict[str, Any]:
        return self._documents([view])[0]

    def _documents(self, views: list[GroupView]) -> list[dict[str, Any]]:
        acks = self.api.store.acks("group", [v.group.id for v in views]) if views else {}
        now = self.api.clock()
        return [group_document(v, now, ack_document(acks.get(v.group.id))) for v in views]

    def _view(self, group_id: str) -> GroupView:
        found = self.api.store.groups(group_id=group_id)
        if not found:
            raise ApiError(404, f"no group {group_id!r}")
        return found[0]

    def list_all(self, req: falcon.Request, resp: falcon.Response, caller: Caller | None) -> None:
        query = validate_query(GroupsQuery, req, repeatable=("label",))
        if query.group is not None:
            raise ApiError(422, INVALID, [detail("group", "unknown query parameter")])
        labels = label_filter(query.labels())
        if labels is None:
            resp.media = {"groups": [], "next_cursor": None}
            return
        after = None if query.cursor is None else models.decode_cursor(query.cursor)
        rows = self.api.store.groups(
            state=query.state, labels=labels, after=after, limit=query.limit + 1
        )
        cursor = None
        if len(rows) > query.limit:
            rows = rows[: query.limit]
            last = rows[-1].group
            cursor = models.encode_cursor((last.created_at, last.id))
        resp.media = {"groups": self._documents(rows), "next_cursor": cursor}

    def get(
        self, req: falcon.Request, resp: falcon.Response, caller: Caller | None, group_id: str
    ) -> None:
        document = self._document(self._view(group_id))
        document["members"] = [job_document(j) for j in self.api.store.jobs(group=group_id)]
        resp.media = {"group": document}

    def put(
        self, req: falcon.Request, resp: falcon.Response, caller: Caller | None, group_id: str
    ) -> None:
        assert caller is not None
        body = read_json(req)
        if isinstance(body, dict):
            if body.get("id", group_id) != group_id:
                raise ApiError(422, INVALID, [detail("id", "differs from the path's group id")])
            body = {**body, "id": group_id}
        spec = validate(GroupSpec, body, self.api._reference_problems)
        existed = bool(self.api.store.groups(group_id=spec.id))
        given = spec.model_fields_set - {"id"}
        group = self.api.store.put_group(spec, given, self.api.clock())
        log.info("api: token %r %s group %s (%s)", caller.name,
                 "updated" if existed else "declared", group.id, group.state)  # fmt: skip
        resp.status = 200 if existed else 201
        resp.media = {"group": self._document(self._view(group.id))}

    def delete(
        self, req: falcon.Request, resp: falcon.Response, caller: Caller | None, group_id: str
    ) -> None:
        assert caller is not None
        view = self._view(group_id)
        if self.api.store.delete_group(group_id) is None:
            raise ApiError(404, f"no group {group_id!r}")
        log.info("api: token %r deleted group %s", caller.name, group_id)
        resp.media = {"group": self._document(view)}

    def seal(
        self, req: falcon.Request, resp: falcon.Response, caller: Caller | None, group_id: str
    ) -> None:
        assert caller is not None
        group = self.api.store.seal_group(group_id, self.api.clock())
        if group is None:
            raise ApiError(404, f"no group {group_id!r}")
        log.info("api: token %r sealed group %s (%s)", caller.name, group.id, group.state)
        resp.media = {"group": self._document(self._view(group_id))}

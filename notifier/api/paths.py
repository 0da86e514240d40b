"""How :data:`~notifier.api.openapi.ENDPOINTS` become Falcon routes.

A job or group id may hold any character, "/" included once percent-decoded, so the
router takes the whole rest of the path after ``/v1/jobs/`` (``/v1/groups/``) as the
id, and an action under an id (``/ack``, ``/seal``) is told apart by its suffix. Every
route checks the token for its endpoint's scope before its handler runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import falcon

from notifier.api import openapi
from notifier.api.parsing import refuse_any_query

if TYPE_CHECKING:
    from notifier.api.app import Api

Handler = Callable[..., None]
Entry = tuple[openapi.Endpoint, Handler]
# The paths whose id may hold "/", with the name of that id.
ID_PATHS = {"/v1/jobs/{job_id}": "job_id", "/v1/groups/{group_id}": "group_id"}


class Resource:
    """One path: checks the token for the method's scope, then calls its handler."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.methods: dict[str, Entry] = {}

    def _dispatch(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        entry = self.methods.get(req.method)
        if entry is None:
            raise falcon.HTTPMethodNotAllowed(sorted(self.methods))
        endpoint, handler = entry
        if endpoint.scope is None:
            caller = None
        else:
            caller = self.api.authenticate(req, endpoint.scope)
            if endpoint.query is None:
                refuse_any_query(req)  # a misspelt filter is an error, not "everything"
        handler(req, resp, caller, **params)

    on_get = on_post = on_delete = on_put = on_patch = _dispatch


def add_routes(
    app: falcon.App[Any, Any], api: Api, handlers: Mapping[tuple[str, str], Handler]
) -> None:
    """Route every endpoint to its handler (``handlers`` by path and method)."""
    resources: dict[str, Resource] = {}
    actions: dict[tuple[str, str], dict[str, Entry]] = {}
    for endpoint in openapi.ENDPOINTS:
        entry = (endpoint, handlers[(endpoint.path, endpoint.method)])
        method = endpoint.method.upper()
        base = next((b for b in ID_PATHS if endpoint.path.startswith(f"{b}/")), None)
        if base is None:
            resources.setdefault(endpoint.path, Resource(api)).methods[method] = entry
        else:
            actions.setdefault((base, method), {})[endpoint.path.removeprefix(base)] = entry
    for (base, method), by_suffix in actions.items():
        scopes = {endpoint.scope for endpoint, _ in by_suffix.values()}
        assert len(scopes) == 1, f"the actions under {base} need one scope per method"
        first = next(iter(by_suffix.values()))[0]
        served = _by_suffix(by_suffix, ID_PATHS[base])
        resources.setdefault(base, Resource(api)).methods[method] = (first, served)
    for path, resource in resources.items():
        for name in ID_PATHS.values():
            path = path.replace(f"{{{name}}}", f"{{{name}:path}}")
        app.add_route(path, resource)


def _by_suffix(by_suffix: Mapping[str, Entry], name: str) -> Handler:
    """A handler of the id's path that serves the action its suffix names (``/ack``)."""

    def serve(req: falcon.Request, resp: falcon.Response, caller: Any, **params: str) -> None:
        value = params[name]
        for suffix, (_, handler) in by_suffix.items():
            if value.endswith(suffix) and len(value) > len(suffix):
                handler(req, resp, caller, **{name: value.removesuffix(suffix)})
                return
        raise falcon.HTTPNotFound()

    return serve

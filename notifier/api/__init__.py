"""The registration API: pipelines watch jobs over authenticated HTTP (``api:``).

:mod:`~notifier.api.models` (requests, responses, the OpenAPI document),
:mod:`~notifier.api.app` (the Falcon application), :mod:`~notifier.api.server`
(waitress on threads of its own).
"""

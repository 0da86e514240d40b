"""Short descriptions of transport errors for logs and ``last_error``.

``requests`` puts the URL (and so possibly a token in a query string) into its
messages; the innermost cause, e.g. ``[Errno 111] Connection refused``, says what
went wrong without it.
"""

from __future__ import annotations

import requests
import urllib3


def describe_error(exc: Exception) -> str:
    """``timed out``, or the innermost cause of a requests, urllib3 or socket error
    (one raised ``from None`` is its own cause)."""
    refused = isinstance(exc, urllib3.exceptions.NewConnectionError)  # a TimeoutError too
    timeouts = requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError
    if isinstance(exc, timeouts) and not refused:
        return "timed out"
    inner: BaseException = exc
    while (cause := _cause_of(inner)) is not None:
        inner = cause
    return str(inner) or type(inner).__name__


def _cause_of(exc: BaseException) -> BaseException | None:
    if exc.__cause__ is not None or exc.__suppress_context__:
        return exc.__cause__
    return exc.__context__


def socket_reason(exc: BaseException) -> str:
    """What the operating system said, e.g. ``connection refused``, from the innermost
    ``OSError`` with an error number in ``exc``'s chain; else :func:`describe_error`."""
    inner: BaseException | None = exc
    while inner is not None:
        if isinstance(inner, OSError) and inner.strerror:
            return inner.strerror[0].lower() + inner.strerror[1:]
        inner = _cause_of(inner)
    return describe_error(exc) if isinstance(exc, Exception) else str(exc)

"""Short descriptions of transport errors for logs and ``last_error``.

``requests`` puts the URL (and so possibly a token in a query string) into its
messages; the innermost cause, e.g. ``[Errno 111] Connection refused``, says what
went wrong without it.
"""

from __future__ import annotations

import requests
import urllib3


def describe_error(exc: Exception) -> str:
    """``timed out``, or the innermost cause of a requests, urllib3 or socket error."""
    refused = isinstance(exc, urllib3.exceptions.NewConnectionError)  # a TimeoutError too
    timeouts = requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError
    if isinstance(exc, timeouts) and not refused:
        return "timed out"
    inner: BaseException = exc
    while (cause := inner.__cause__ or inner.__context__) is not None:
        inner = cause
    return str(inner) or type(inner).__name__

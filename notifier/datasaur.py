"""Datasaur's GraphQL API: OAuth2 client-credentials tokens and the getJob(s) queries.

Transport only: no retries beyond one token refresh after an authentication failure.
Backing off is the poller's decision.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import certifi
import requests
import urllib3

from notifier import __version__, metrics
from notifier.backoff import parse_retry_after
from notifier.config import DatasaurSettings
from notifier.errors import describe_error
from notifier.keepalive import KeptAlive, Reply

log = logging.getLogger(__name__)

JOB_FIELDS = "id status progress errors { id stack args } resultId createdAt updatedAt result"
GET_JOB = f"query GetJob($jobId: String!) {{ result: getJob(jobId: $jobId) {{ {JOB_FIELDS} }} }}"
GET_JOBS = (
    f"query GetJobs($jobIds: [String!]!) {{ result: getJobs(jobIds: $jobIds) {{ {JOB_FIELDS} }} }}"
)
USER_AGENT = f"datasaur-notifier/{__version__}"
REFRESH_MARGIN = 0.1  # refresh when this fraction of the token's lifetime is left


class ApiUnavailable(Exception):
    """The API (or its token endpoint) did not answer usefully; back off and retry later."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class AuthenticationFailed(ApiUnavailable):
    """Credentials were refused."""


class QueryRejected(Exception):
    """The API answered the query with GraphQL errors and no data."""


class TokenSource:
    """Bearer tokens: a fixed one, or OAuth2 client credentials refreshed ahead of expiry."""

    def __init__(self, settings: DatasaurSettings, session: requests.Session) -> None:
        self._settings = settings
        self._session = session
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0

    @property
    def refreshable(self) -> bool:
        """Whether a new token can be asked for (False for a fixed token)."""
        return self._settings.token is None

    def get(self) -> str:
        """A valid bearer token, fetching a new one when needed."""
        if self._settings.token is not None:
            return self._settings.token.get_secret_value()
        with self._lock:
            if self._token is None or time.monotonic() >= self._refresh_at:
                self._token, lifetime = self._fetch()
                self._refresh_at = time.monotonic() + lifetime * (1 - REFRESH_MARGIN)
            return self._token

    def invalidate(self) -> None:
        """Forget the current token (after the API refused it)."""
        with self._lock:
            self._token = None

    def _fetch(self) -> tuple[str, float]:
        """A new token and its lifetime; counted by outcome."""
        outcome = "failed"
        try:
            answer = self._request_token()
            outcome = "ok"
            return answer
        except AuthenticationFailed:
            outcome = "refused"
            raise
        finally:
            metrics.TOKEN_REFRESHES.labels(outcome).inc()

    def _request_token(self) -> tuple[str, float]:
        settings = self._settings
        url = settings.effective_token_url
        assert settings.client_id is not None and settings.client_secret is not None
        form = {
            "client_id": settings.client_id,
            "client_secret": settings.client_secret.get_secret_value(),
            "grant_type": "client_credentials",
        }
        try:
            response = self._session.post(url, data=form, timeout=settings.timeout)
        except requests.RequestException as exc:
            raise ApiUnavailable(f"token endpoint {url}: {describe_error(exc)}") from None
        if response.status_code in (400, 401, 403):
            raise AuthenticationFailed(
                f"token endpoint {url} refused the client credentials "
                f"(HTTP {response.status_code}); check client_id and client_secret"
            )
        if response.status_code != 200:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
            raise ApiUnavailable(
                f"token endpoint {url} answered HTTP {response.status_code}", retry_after
            )
        try:
            answer = response.json()
            token = answer["access_token"]
            lifetime = float(answer.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise ApiUnavailable(f"token endpoint {url} gave an unreadable answer") from None
        if not isinstance(token, str) or not token:
            raise ApiUnavailable(f"token endpoint {url} gave no access_token")
        log.info("obtained a Datasaur access token valid for %.0fs", lifetime)
        return token, lifetime


class _Proxied:
    """The GraphQL endpoint through the proxy the environment names (urllib3)."""

    def __init__(self, url: str, proxy: str, timeout: float, bundle: str | None) -> None:
        self.url = url
        where = "ca_cert_dir" if bundle and os.path.isdir(bundle) else "ca_certs"
        tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED", where: bundle or certifi.where()}
        self.manager = urllib3.ProxyManager(proxy, maxsize=2, **tls)
        self.timeout = urllib3.Timeout(connect=timeout, read=timeout)

    def post(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        response = self.manager.request(
            "POST", self.url, body=body, headers=dict(headers), timeout=self.timeout,
            retries=False, redirect=False,
        )  # fmt: skip
        return response.status, response.headers.get("Retry-After"), response.data


def _graphql_transport(settings: DatasaurSettings) -> KeptAlive | _Proxied:
    """The GraphQL endpoint's transport, its proxy and CA bundle read once.

    The proxy (``HTTPS_PROXY``/``NO_PROXY`` ...) and CA bundle (``REQUESTS_CA_BUNDLE``)
    are those requests would use, so both clients reach the same places the same way.
    """
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    url = settings.graphql_url
    proxies = requests.utils.get_environ_proxies(url)
    proxy = proxies.get(urlsplit(url).scheme) or proxies.get("all")
    if proxy:
        return _Proxied(url, proxy, settings.timeout, bundle)
    return KeptAlive(url, settings.timeout, bundle)


def _resolve_environment_once(session: requests.Session, settings: DatasaurSettings) -> None:
    """Read proxy and CA-bundle variables now instead of on every request.

    With ``trust_env`` requests scans ``os.environ`` twice per request for proxies, about
    0.3 ms of CPU, a fifth of a getJobs call. The daemon's environment does not change, so
    the same settings are resolved once; kept per request if the two endpoints would get
    different proxies (``no_proxy`` naming only one of them).
    """
    urls = {settings.graphql_url, settings.effective_token_url}
    proxies = [requests.utils.get_environ_proxies(url) for url in urls]
    if any(found != proxies[0] for found in proxies):
        return
    session.trust_env = False
    session.proxies.update(proxies[0])
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle


def _is_unauthenticated(answer: dict[str, Any]) -> bool:
    errors = answer.get("errors") or []
    return any(
        isinstance(error, dict)
        and isinstance(error.get("extensions"), dict)
        and error["extensions"].get("code") == "UNAUTHENTICATED"
        for error in errors
    )


def _error_text(answer: dict[str, Any]) -> str:
    errors = answer.get("errors") or []
    messages = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]
    return "; ".join(messages)[:500] or "no data in the answer"


class DatasaurClient:
    """Asks Datasaur about jobs."""

    def __init__(self, settings: DatasaurSettings, session: requests.Session | None = None):
        self.settings = settings
        if session is None:
            session = requests.Session()
            _resolve_environment_once(session, settings)
        self.session = session
        self.session.headers["User-Agent"] = USER_AGENT
        self.tokens = TokenSource(settings, self.session)
        self.transport = _graphql_transport(settings)

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        """The job, or None if Datasaur does not know it."""
        result = self._query("GetJob", GET_JOB, {"jobId": job_id})
        if result is not None and not isinstance(result, dict):
            raise QueryRejected("getJob answered something that is not a job")
        return result

    def get_jobs(self, job_ids: list[str]) -> list[dict[str, Any] | None]:
        """One entry per id, in order; None for an unknown id."""
        result = self._query("GetJobs", GET_JOBS, {"jobIds": job_ids})
        if not isinstance(result, list) or len(result) != len(job_ids):
            raise QueryRejected("getJobs answered a list that does not match the ids asked for")
        by_id = {job["id"]: job for job in result if isinstance(job, dict) and "id" in job}
        return [by_id.get(job_id) for job_id in job_ids]

    def _query(self, operation: str, query: str, variables: dict[str, Any]) -> Any:
        answer = self._post(operation, query, variables)
        if self._auth_failed(answer) and self.tokens.refreshable:
            self.tokens.invalidate()
            answer = self._post(operation, query, variables)
        if self._auth_failed(answer):
            raise AuthenticationFailed("Datasaur refused the access token (unauthenticated)")
        body = answer.json_body
        data = body.get("data")
        if not isinstance(data, dict) or "result" not in data:
            raise QueryRejected(_error_text(body))
        if data["result"] is None and body.get("errors"):
            raise QueryRejected(_error_text(body))
        if body.get("errors"):
            log.warning("Datasaur answered %s with errors: %s", operation, _error_text(body))
        return data["result"]

    @staticmethod
    def _auth_failed(answer: _Answer) -> bool:
        return answer.status == 401 or _is_unauthenticated(answer.json_body)

    def _post(self, operation: str, query: str, variables: dict[str, Any]) -> _Answer:
        headers = {
            "Authorization": f"Bearer {self.tokens.get()}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        body = {"operationName": operation, "variables": variables, "query": query}
        outcome = "error"
        started = time.monotonic()
        try:
            status, retry_after, data = self.transport.post(
                json.dumps(body, separators=(",", ":")).encode(), headers
            )
            answer = _Answer.from_response(status, retry_after, data)
            outcome = "ok"
            return answer
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            raise ApiUnavailable(f"Datasaur API: {describe_error(exc)}") from None
        finally:
            metrics.GRAPHQL_LATENCY.labels(operation).observe(time.monotonic() - started)
            metrics.GRAPHQL_REQUESTS.labels(operation, outcome).inc()


class _Answer:
    """An HTTP answer from the GraphQL endpoint, reduced to what the client needs."""

    def __init__(self, status: int, json_body: dict[str, Any]) -> None:
        self.status = status
        self.json_body = json_body

    @classmethod
    def from_response(cls, status: int, retry_after: str | None, data: bytes) -> _Answer:
        if status == 401:
            return cls(status, {})
        if status == 429 or status >= 500:
            wait = parse_retry_after(retry_after, time.time())
            raise ApiUnavailable(f"Datasaur API answered HTTP {status}", wait)
        try:
            body = json.loads(data)
        except ValueError:
            raise ApiUnavailable(
                f"Datasaur API answered HTTP {status} with a body that is not JSON"
            ) from None
        if not isinstance(body, dict):
            raise ApiUnavailable(f"Datasaur API answered HTTP {status} with unexpected JSON")
        if status != 200 and not body.get("errors"):
            raise ApiUnavailable(f"Datasaur API answered HTTP {status}")
        return cls(status, body)

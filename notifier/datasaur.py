"""Datasaur's GraphQL API: OAuth2 client-credentials tokens and the getJob(s) queries.

Transport only: no retries beyond one token refresh after an authentication failure,
and stepping down to an older selection of ``Job`` fields when the server rejects one
(kept for the client's life). Backing off is the poller's decision. Polls never select
``result``: :meth:`DatasaurClient.attach_results` asks for it when a job has ended.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import certifi
import requests
import urllib3

from notifier import __version__, metrics
from notifier.backoff import parse_retry_after
from notifier.client_cert import ClientCertAdapter, hint
from notifier.config import DatasaurSettings
from notifier.datasaur_answers import (
    SELECTION_TIERS,
    Observation,
    alias_slot,
    error_text,
    list_slot,
    match_jobs,
    rejected_fields,
    token_refused,
)
from notifier.errors import describe_error
from notifier.keepalive import KeptAlive, Reply, tls_context
from notifier.logs import scrub

log = logging.getLogger(__name__)

GET_JOB = "query GetJob($jobId: String!) {{ result: getJob(jobId: $jobId) {{ {} }} }}"
GET_JOBS = "query GetJobs($jobIds: [String!]!) {{ result: getJobs(jobIds: $jobIds) {{ {} }} }}"
GET_RESULTS = (
    "query GetJobResults($jobIds: [String!]!) { result: getJobs(jobIds: $jobIds) { id result } }"
)
STATIC_BEARER_REFUSED = (
    "Datasaur refused the access token of datasaur.token (expired or revoked): put a new "
    "one in datasaur.token and reload, or set datasaur.client_id and datasaur.client_secret "
    "instead so that the daemon renews its tokens itself"
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


class TokenRefused(AuthenticationFailed):
    """The fixed ``datasaur.token`` was refused: only the operator can fix it."""


class SchemaUnsupported(ApiUnavailable):
    """The server rejected even the smallest selection of ``Job`` fields."""


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
        self.lifetime: float | None = None  # of the last token fetched, in seconds

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
                self.lifetime = lifetime
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
            raise ApiUnavailable(f"token endpoint {url}: {hint(describe_error(exc))}") from None
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

    def __init__(self, url: str, proxy: str, settings: DatasaurSettings, bundle: str | None):
        self.url = url
        client, timeout = settings.client_certificate, settings.timeout
        where = "ca_cert_dir" if bundle and os.path.isdir(bundle) else "ca_certs"
        tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED", where: bundle or certifi.where()}
        if client is not None and urlsplit(url).scheme == "https":
            tls = {"ssl_context": tls_context(bundle, client)}
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
        return _Proxied(url, proxy, settings, bundle)
    return KeptAlive(url, settings.timeout, bundle, settings.client_certificate)


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


class DatasaurClient:
    """Asks Datasaur about jobs.

    ``tier`` is the selection of ``Job`` fields to start from (an index into
    :attr:`tiers`, :data:`~notifier.datasaur_answers.SELECTION_TIERS`); :attr:`tier`
    says where it is.
    """

    tiers: tuple[str, ...] = SELECTION_TIERS

    def __init__(
        self,
        settings: DatasaurSettings,
        session: requests.Session | None = None,
        tier: int = 0,
    ):
        self.settings = settings
        if session is None:
            session = requests.Session()
            _resolve_environment_once(session, settings)
        self.session = session
        self.session.headers["User-Agent"] = USER_AGENT
        if settings.client_certificate is not None:
            self.session.mount("https://", ClientCertAdapter(settings.client_certificate))
        self.tokens = TokenSource(settings, self.session)
        self.transport = _graphql_transport(settings)
        self.tier = tier
        self._texts: dict[tuple[str, int], str] = {}

    @property
    def fields(self) -> str:
        """The ``Job`` fields the client asks for now."""
        return self.tiers[self.tier]

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        """The job, or None if Datasaur does not know it."""
        body = self._select("GetJob", GET_JOB.format, {"jobId": job_id})
        result = _result_of(body)
        if result is not None and not isinstance(result, dict):
            raise QueryRejected("getJob answered something that is not a job")
        return result

    def get_jobs(self, job_ids: list[str]) -> list[Observation]:
        """One observation per id, in order: matched by ``id``, in whatever order the
        answer lists them; an entry nulled by an error is that job's error."""
        body = self.ask_jobs(job_ids)
        entries = _list_of(body)
        if "errors" in body:
            log.warning("Datasaur answered GetJobs with errors: %s", error_text(body))
        return match_jobs(job_ids, entries, body, list_slot(job_ids, entries))

    def ask_jobs(self, job_ids: list[str]) -> dict[str, Any]:
        """getJobs' answer as it came (the selection stepped down as needed)."""
        return self._select("GetJobs", GET_JOBS.format, {"jobIds": job_ids})

    def get_jobs_each(self, job_ids: list[str]) -> list[Observation]:
        """Like :meth:`get_jobs`, with one ``getJob`` per id in one request, so that one
        job that breaks a whole ``getJobs`` costs its own answer only."""
        variables = {f"j{index}": job_id for index, job_id in enumerate(job_ids)}

        def text(fields: str) -> str:
            declared = ", ".join(f"${name}: String!" for name in variables)
            asked = " ".join(f"{name}: getJob(jobId: ${name}) {{ {fields} }}" for name in variables)
            return f"query GetJobsEach({declared}) {{ {asked} }}"

        body = self._select("GetJobsEach", text, variables)
        data = body.get("data")
        if not isinstance(data, dict):
            raise QueryRejected(error_text(body))
        entries = [data.get(name) for name in variables]
        return match_jobs(job_ids, entries, body, alias_slot)

    def attach_results(self, jobs: list[dict[str, Any]]) -> None:
        """Add its ``result`` to each job (ended ones: one request for all of them). When
        that fails, each gets ``"result": None`` and ``"result_error"`` saying why."""
        if not jobs:
            return
        ids = [str(job.get("id")) for job in jobs]
        try:
            body = self._ask("GetJobResults", GET_RESULTS, {"jobIds": ids})
            entries = _list_of(body)
            seen = match_jobs(ids, entries, body, list_slot(ids, entries))
        except (ApiUnavailable, QueryRejected) as exc:
            seen = [Observation(error=scrub(str(exc)))] * len(jobs)
        for job, found in zip(jobs, seen, strict=True):
            if found.job is not None:
                job["result"] = found.job.get("result")
                continue
            job["result"] = None
            job["result_error"] = found.error or "the job was not found when its result was asked"
            log.warning("job %s: result not fetched: %s", job.get("id"), job["result_error"])

    def _select(
        self, operation: str, text: Callable[[str], str], variables: dict[str, Any]
    ) -> dict[str, Any]:
        """Ask with the current selection, stepping down while the server rejects it."""
        while True:
            key = (operation, self.tier)
            query = self._texts.get(key) or text(self.fields)
            if operation != "GetJobsEach":
                self._texts[key] = query
            body = self._ask(operation, query, variables)
            missing = rejected_fields(body)
            if missing is None:
                return body
            self._step_down(missing, body)

    def _step_down(self, missing: list[str], body: dict[str, Any]) -> None:
        if self.tier + 1 == len(self.tiers):
            raise SchemaUnsupported(
                f"Datasaur rejected even the fields {self.fields!r}: {error_text(body)}"
            )
        self.tier += 1
        log.warning(
            "Datasaur does not have the Job field%s %s (a server older than this client); "
            "asking for %r from now on, until restart",
            "s" if len(missing) > 1 else "",
            ", ".join(missing) or f"asked for ({error_text(body)})",
            self.fields,
        )

    def _ask(self, operation: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The answer's JSON, after one new token if the server refused the token."""
        answer = self._post(operation, query, variables)
        if token_refused(answer.status, answer.json_body):
            if not self.tokens.refreshable:
                raise TokenRefused(STATIC_BEARER_REFUSED)
            self.tokens.invalidate()
            answer = self._post(operation, query, variables)
            if token_refused(answer.status, answer.json_body):
                raise AuthenticationFailed("Datasaur refused a new access token (unauthenticated)")
        return answer.json_body

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
            raise ApiUnavailable(f"Datasaur API: {hint(describe_error(exc))}") from None
        finally:
            metrics.GRAPHQL_LATENCY.labels(operation).observe(time.monotonic() - started)
            metrics.GRAPHQL_REQUESTS.labels(operation, outcome).inc()


def _result_of(body: dict[str, Any]) -> Any:
    """``data.result``; QueryRejected when the query failed as a whole."""
    data = body.get("data")
    if not isinstance(data, dict) or "result" not in data:
        raise QueryRejected(error_text(body))
    if data["result"] is None and body.get("errors"):
        raise QueryRejected(error_text(body))
    return data["result"]


def _list_of(body: dict[str, Any]) -> list[Any]:
    result = _result_of(body)
    if not isinstance(result, list):
        raise QueryRejected("getJobs answered something that is not a list")
    return result


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
            rejection = _rejection(data)  # a selection rejected at any HTTP status
            if rejection is not None:
                return cls(status, rejection)
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


def _rejection(data: bytes) -> dict[str, Any] | None:
    """An error answer's JSON when it rejects the selection (else None: the API is unwell)."""
    if not data.lstrip().startswith(b"{"):
        return None
    try:
        body = json.loads(data)
    except ValueError:
        return None
    return body if isinstance(body, dict) and rejected_fields(body) is not None else None

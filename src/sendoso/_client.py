"""``Sendoso`` and ``AsyncSendoso``: the same client, driven synchronously or asynchronously.

Everything they decide is decided elsewhere, once: settings in ``_config``, host defaults in
``_profile``, the HTTP policy in ``_http``, the token rules in ``_auth``. Each class only runs
the policy's generator with its own kind of I/O and lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from types import TracebackType
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar

import anyio
import httpx

from sendoso._auth import AccessToken, TokenCache, TokenInfo, TokenManager
from sendoso._config import load_settings
from sendoso._http import (
    Action,
    Authorize,
    BearerToken,
    Call,
    Flow,
    Policy,
    RequestSpec,
    ServerIdentity,
    Transmit,
    aread_capped,
    call_flow,
    read_capped,
)
from sendoso._pacing import Pacer
from sendoso._profile import HostProfile, check_secret_for_host, profile_for
from sendoso._version import __version__
from sendoso.errors import ConfigurationError, SendosoError
from sendoso.resources import AsyncGifts, AsyncSends, Gifts, Sends, Steps

__all__ = ["AsyncSendoso", "Sendoso"]

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
#: Every connection opened is kept alive. httpx keeps 20 by default: a batch with more sends
#: in flight closed the rest after each reply and opened a new one (a TLS handshake, in
#: production) for nearly every send.
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)
USER_AGENT = f"sendoso-python/{__version__}"
Auto = Literal["auto"]
_HttpT = TypeVar("_HttpT", httpx.Client, httpx.AsyncClient)
_T = TypeVar("_T")


class _ClientBase(Generic[_HttpT]):
    """Configuration shared by both clients; no I/O.

    Credentials come from the arguments, else ``SENDOSO_CLIENT_ID``,
    ``SENDOSO_CLIENT_SECRET`` and ``SENDOSO_BASE_URL``, else the config file's profile.
    ``rate_limit`` is requests per second ("auto": 10/s for the production host, unpaced for
    a loopback sandbox; either is lowered on each 429 to just under the rate that met it);
    ``trust_idempotency`` says whether the server deduplicates on ``Idempotency-Key``
    (``None``: only the loopback sandbox is trusted). ``wait_on_rate_limited_sends=False``
    makes a 429 on a send raise :class:`RateLimitError` at once instead of waiting it out
    (the shared pause still holds every caller back): for callers that requeue sends
    themselves. ``http_client`` is
    yours to configure and close; otherwise the client makes and closes its own.
    """

    _http_class: ClassVar[type[httpx.Client] | type[httpx.AsyncClient]]

    def __init__(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        base_url: str | None = None,
        profile: str | None = None,
        max_retries: int = 4,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        rate_limit: float | Auto | None = "auto",
        trust_idempotency: bool | None = None,
        wait_on_rate_limited_sends: bool = True,
        token_cache: TokenCache | None = None,
        host_profile: HostProfile | None = None,
        http_client: _HttpT | None = None,
    ) -> None:
        settings = load_settings(
            profile=profile, client_id=client_id, client_secret=client_secret, base_url=base_url
        )
        if not settings.client_id or settings.client_secret is None:
            raise ConfigurationError(
                "client_id and client_secret are required: pass them, set SENDOSO_CLIENT_ID and "
                "SENDOSO_CLIENT_SECRET, or add a profile to the config file"
            )
        self.base_url = settings.base_url.rstrip("/")
        self.client_id = settings.client_id
        # Checked even with an explicit host profile: plain http to a remote host is refused.
        default_host = profile_for(self.base_url)
        check_secret_for_host(self.base_url, settings.client_secret.get_secret_value())
        host = host_profile or default_host
        self._host = host
        # Only a limit someone chose is held fixed; a default one is a guess to adapt.
        adaptive = rate_limit == "auto" and settings.rate_limit is None
        if rate_limit == "auto":
            rate_limit = settings.rate_limit if settings.rate_limit is not None else host.rate_limit
        if trust_idempotency is None:
            trust_idempotency = settings.trust_idempotency
        if trust_idempotency is None:
            trust_idempotency = host.trusts_idempotency
        self.pacer = Pacer(rate_limit, adaptive=adaptive)
        self._identity = ServerIdentity()
        self._policy = Policy(
            max_retries=max_retries,
            trusts_idempotency=trust_idempotency,
            wait_on_rate_limited_sends=wait_on_rate_limited_sends,
        )
        self._tokens = TokenManager(
            base_url=self.base_url,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            profile=host,
            cache=token_cache,
        )
        self._owns_http = http_client is None
        self._http: _HttpT = http_client or self._http_class(  # type: ignore[assignment]
            timeout=timeout, limits=DEFAULT_LIMITS, headers={"User-Agent": USER_AGENT}
        )
        self._bind()

    def _bind(self) -> None:
        """Where each client attaches its token lock and resources."""

    @property
    def trusts_idempotency(self) -> bool:
        """Whether an ambiguous send is retried with the same key (else it raises).

        On a loopback host left to decide, this turns true once the server has identified
        itself as the sandbox.
        """
        if self._policy.trusts_idempotency is None:
            return self._identity.is_sandbox
        return self._policy.trusts_idempotency

    def _flow(self, call: Call) -> Flow:
        return call_flow(
            call,
            base_url=self.base_url,
            pacer=self.pacer,
            policy=self._policy,
            identity=self._identity,
        )

    def _operation(self, steps: Steps[_T]) -> Generator[Action, Any, _T]:
        """A resource operation with each of its calls carried out under the HTTP policy."""
        response: httpx.Response | None = None
        while True:
            try:
                call = steps.send(response)  # type: ignore[arg-type]  # None starts it
            except StopIteration as done:
                result: _T = done.value
                return result
            response = yield from self._flow(call)

    def _obtain_token(
        self, stale: BearerToken | None, attempts_seen: int
    ) -> Generator[Action, Any, AccessToken]:
        """The token rules as a flow: reuse, share a failure, or fetch. Run under the lock."""
        token = self._tokens.usable(stale)
        if token is not None:
            return token
        self._tokens.raise_if_failed_since(attempts_seen)
        try:
            response = yield from self._flow(self._tokens.request())
            return self._tokens.accept(response)
        except SendosoError as exc:
            self._tokens.failed(exc)
            raise

    def _build(self, spec: RequestSpec) -> httpx.Request:
        return self._http.build_request(
            spec.method,
            spec.url,
            params=spec.params,
            json=spec.json,
            data=spec.form,
            headers=spec.headers,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"


class Sendoso(_ClientBase[httpx.Client]):
    """The Sendoso API client: ``client.gifts``, ``client.sends``, ``client.authenticate()``."""

    _http_class = httpx.Client

    def _bind(self) -> None:
        self._token_lock = threading.Lock()
        self.gifts = Gifts(self._run, self._host)
        self.sends = Sends(self._run, self._host)

    def authenticate(self, *, refresh: bool = False) -> TokenInfo:
        """Obtain (or reuse) an access token; returns its expiry, never its value.

        ``refresh=True`` always asks the server, which proves the credentials work now.
        """
        if refresh:
            self._tokens.forget()
        return self._token(None).info()

    def _run(self, steps: Steps[_T]) -> _T:
        return self._drive(self._operation(steps))

    def _drive(self, flow: Generator[Action, Any, _T]) -> _T:
        outcome: Any = None
        while True:
            try:
                action = flow.send(outcome)
            except StopIteration as done:
                result: _T = done.value
                return result
            if isinstance(action, Transmit):
                try:
                    outcome = read_capped(
                        self._http.send(self._build(action.request), stream=True),
                        self._policy.max_response_bytes,
                    )
                except httpx.RequestError as exc:
                    outcome = exc
            elif isinstance(action, Authorize):
                try:
                    outcome = self._token(action.stale)
                except SendosoError as exc:  # the flow decides what it means for the call
                    outcome = exc
            else:
                time.sleep(action.seconds)
                outcome = None

    def _token(self, stale: BearerToken | None) -> AccessToken:
        seen = self._tokens.attempts
        with self._token_lock:
            return self._drive(self._obtain_token(stale, seen))

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncSendoso(_ClientBase[httpx.AsyncClient]):
    """The asynchronous twin of :class:`Sendoso`: same arguments, same resources, awaited."""

    _http_class = httpx.AsyncClient

    def _bind(self) -> None:
        self._token_lock = anyio.Lock()
        self.gifts = AsyncGifts(self._run, self._host)
        self.sends = AsyncSends(self._run, self._host)

    async def authenticate(self, *, refresh: bool = False) -> TokenInfo:
        """Obtain (or reuse) an access token; returns its expiry, never its value.

        ``refresh=True`` always asks the server, which proves the credentials work now.
        """
        if refresh:
            self._tokens.forget()
        return (await self._token(None)).info()

    async def _run(self, steps: Steps[_T]) -> _T:
        return await self._drive(self._operation(steps))

    async def _drive(self, flow: Generator[Action, Any, _T]) -> _T:
        outcome: Any = None
        while True:
            try:
                action = flow.send(outcome)
            except StopIteration as done:
                result: _T = done.value
                return result
            if isinstance(action, Transmit):
                try:
                    outcome = await aread_capped(
                        await self._http.send(self._build(action.request), stream=True),
                        self._policy.max_response_bytes,
                    )
                except httpx.RequestError as exc:
                    outcome = exc
            elif isinstance(action, Authorize):
                try:
                    outcome = await self._token(action.stale)
                except SendosoError as exc:  # the flow decides what it means for the call
                    outcome = exc
            else:
                await anyio.sleep(action.seconds)
                outcome = None

    async def _token(self, stale: BearerToken | None) -> AccessToken:
        seen = self._tokens.attempts
        async with self._token_lock:
            return await self._drive(self._obtain_token(stale, seen))

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

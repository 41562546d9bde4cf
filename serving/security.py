"""Request security for the service, as two plain ASGI middlewares (README "Security").

`BearerAuth`: an optional bearer token on every path but the probes, the metrics and the
pages that describe the API. It is added only when a token is configured, so serving
without one costs nothing. `BodyLimit`: a cap on request body size, checked against
Content-Length before anything is read; a body sent without one (chunked) is counted as
it arrives and refused as soon as it passes the cap.

Neither ever puts the token in an answer or a log line.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import SecretStr
from starlette.responses import JSONResponse

from core.errors import UserError
from core.settings import Settings

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MIN_TOKEN_CHARS = 16
# Open without a token, any method: what the orchestrator probes and Prometheus scrapes.
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
# Open for GET/HEAD: the API page and its assets, the OpenAPI and client schemas, the model
# card, the dashboard's page shell and its assets (serving/dashboard.py). They describe the
# API and the model, never a customer: the shell asks for the token before it reads any
# data. Everything else (the scoring and the dashboard's data endpoints) needs the token.
OPEN_GET_PATHS = frozenset(
    {"/", "/docs", "/docs/", "/docs.json", "/schema.json", "/model", "/model/"}
    | {"/dashboard", "/dashboard/"}
)
OPEN_GET_PREFIXES = ("/static_content/", "/assets/", "/dashboard/assets/")
REALM = 'Bearer realm="riskbento"'


class AuthConfigError(UserError, ValueError):
    """The token settings cannot be used; the server refuses to start."""


def auth_token(settings: Settings) -> SecretStr | None:
    """The configured bearer token, or None when auth is off (neither setting given).

    Refuses both settings at once (which one is meant?), a missing, unreadable or empty
    file, an empty variable, a token shorter than MIN_TOKEN_CHARS and one that cannot be
    sent in an HTTP header. The messages name the setting, never the token."""
    if settings.auth_token is not None and settings.auth_token_file is not None:
        raise AuthConfigError(
            "both RISKBENTO_AUTH_TOKEN and RISKBENTO_AUTH_TOKEN_FILE are set; set only one "
            "(the file for a mounted secret, the variable for a quick local run)"
        )
    if settings.auth_token_file is not None:
        path = settings.auth_token_file
        source = f"RISKBENTO_AUTH_TOKEN_FILE ({path})"
        try:
            # A trailing newline is how most secret files end, not part of the token.
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            raise AuthConfigError(
                f"{source}: expected a readable UTF-8 file holding the token, got "
                f"{type(err).__name__}: {getattr(err, 'strerror', None) or err}"
            ) from None
    elif settings.auth_token is not None:
        source = "RISKBENTO_AUTH_TOKEN"
        token = settings.auth_token.get_secret_value().strip()
    else:
        return None
    if not token:
        raise AuthConfigError(f"{source}: expected a token, got an empty value")
    if len(token) < MIN_TOKEN_CHARS:
        raise AuthConfigError(
            f"{source}: expected a token of at least {MIN_TOKEN_CHARS} characters, got "
            f"{len(token)}; make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    if not all(33 <= ord(c) <= 126 for c in token):
        raise AuthConfigError(
            f"{source}: expected visible ASCII characters only (no spaces), as an HTTP "
            "header can carry; got other characters"
        )
    return SecretStr(token)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _is_open(scope: Scope) -> bool:
    path = scope["path"]
    if path in OPEN_PATHS:
        return True
    return scope["method"] in ("GET", "HEAD") and (
        path in OPEN_GET_PATHS or path.startswith(OPEN_GET_PREFIXES)
    )


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown client"


class BearerAuth:
    """401 unless the request carries `Authorization: Bearer <token>` (open paths aside).

    The token is compared in constant time (`hmac.compare_digest`); answers and log lines
    say what was wrong, never what was sent."""

    def __init__(self, app: App, token: SecretStr) -> None:
        self.app = app
        self._expected = token.get_secret_value().encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_open(scope):
            await self.app(scope, receive, send)
            return
        problem, challenge = self._problem(_header(scope, b"authorization"))
        if problem is None:
            await self.app(scope, receive, send)
            return
        logger.warning(
            "401 %s %s from %s: %s", scope["method"], scope["path"], _client(scope), problem
        )
        answer = JSONResponse(
            {"error": problem}, status_code=401, headers={"WWW-Authenticate": challenge}
        )
        await answer(scope, receive, send)

    def _problem(self, header: bytes | None) -> tuple[str | None, str]:
        """(what is wrong or None, the WWW-Authenticate challenge to answer with)."""
        if header is None:
            return "missing bearer token: send the header `Authorization: Bearer <token>`", REALM
        scheme, _, credentials = header.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            # Never show what arrived: a token sent without the scheme would be the "scheme".
            return (
                "expected `Authorization: Bearer <token>`, got an Authorization header "
                "without the Bearer scheme",
                REALM,
            )
        if not hmac.compare_digest(credentials.strip(), self._expected):
            return "invalid bearer token", f'{REALM}, error="invalid_token"'
        return None, REALM


class BodyLimit:
    """413 for a request body above `max_bytes` (`route_max_bytes` overrides it per path)."""

    def __init__(
        self, app: App, max_bytes: int, route_max_bytes: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.route_max_bytes = dict(route_max_bytes or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        limit = self.route_max_bytes.get(scope["path"], self.max_bytes)
        length = _header(scope, b"content-length")
        if length is None:
            # No Content-Length (a chunked body): read it here, counting, then hand it on.
            messages, size = await _read_body(receive, limit)
            if size <= limit:
                await self.app(scope, _replay(messages, receive), send)
                return
            status, problem = (
                413,
                f"{_too_large(scope, limit)} at least {size:,} (a chunked body, read until it "
                "passed the limit)",
            )
        elif not length.isdigit():
            shown = length.decode("latin-1")[:40]
            status, problem = 400, f"expected Content-Length to be a number of bytes, got {shown!r}"
        elif int(length) > limit:
            status, problem = 413, f"{_too_large(scope, limit)} {int(length):,} (Content-Length)"
        else:
            await self.app(scope, receive, send)
            return
        logger.warning(
            "%d %s %s from %s: %s", status, scope["method"], scope["path"], _client(scope), problem
        )
        await JSONResponse({"error": problem}, status_code=status)(scope, receive, send)


def _too_large(scope: Scope, limit: int) -> str:
    return f"request body too large: {scope['path']} accepts at most {limit:,} bytes, got"


async def _read_body(receive: Receive, limit: int) -> tuple[list[Message], int]:
    """The body's messages and its size, reading no further once the size passes `limit`."""
    messages: list[Message] = []
    size = 0
    while size <= limit:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return messages, size


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that hands out the messages already read, then the real ones."""
    pending = iter(messages)

    async def replay() -> Message:
        return next(pending, None) or await receive()

    return replay


def middlewares(settings: Settings) -> list[tuple[type, dict[str, Any]]]:
    """(middleware, options) for `Service.add_asgi_middleware`, in order: the token check
    only when a token is configured, first, so a caller without it gets a 401 before any
    body is read; then the body limit. Raises AuthConfigError (the server does not start)
    when the token settings cannot be used."""
    chain: list[tuple[type, dict[str, Any]]] = []
    token = auth_token(settings)
    if token is None:
        logger.info(
            "bearer-token auth is off: set RISKBENTO_AUTH_TOKEN or RISKBENTO_AUTH_TOKEN_FILE "
            "before exposing this server beyond your machine"
        )
    else:
        source = "RISKBENTO_AUTH_TOKEN_FILE" if settings.auth_token_file else "RISKBENTO_AUTH_TOKEN"
        logger.info("bearer-token auth is on (token from %s)", source)
        chain.append((BearerAuth, {"token": token}))
    route_max_bytes = {"/score_transactions": settings.max_transactions_body_bytes}
    chain.append(
        (BodyLimit, {"max_bytes": settings.max_body_bytes, "route_max_bytes": route_max_bytes})
    )
    return chain

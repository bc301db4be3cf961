"""python-telegram-bot's networking on aiohttp instead of httpx.

PTB lets a bot bring its own networking backend (`telegram.request.BaseRequest`). Measured under
200 concurrent chats (bench/throughput.py), httpx's pool spends more CPU choosing a connection
than the bot spends on the whole conversation step; aiohttp's connector and C HTTP parser do the
same Bot API call for a fraction of it. Parameters go as one JSON body (the Bot API takes
application/json for every method), multipart when files are uploaded, as PTB's HTTPXRequest
sends them.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from yarl import URL

DEFAULT_TIMEOUT = 5.0
_JSON = {"Content-Type": "application/json"}
MEDIA_WRITE_TIMEOUT = 20.0


def _seconds(value: Any, default: float | None) -> float | None:
    """A timeout PTB passed, or the default when it passed its DEFAULT_NONE marker."""
    return default if value is BaseRequest.DEFAULT_NONE else value


class AiohttpRequest(BaseRequest):
    """A BaseRequest over one aiohttp ClientSession with a bounded connection pool."""

    __slots__ = (
        "_connections",
        "_pool_timeout",
        "_post_limits",
        "_post_session",
        "_read_timeout",
        "_session",
    )

    def __init__(
        self,
        connections: int = 32,
        read_timeout: float | None = DEFAULT_TIMEOUT,
        pool_timeout: float | None = 5.0,
    ) -> None:
        self._connections = connections
        self._read_timeout = read_timeout
        self._pool_timeout = pool_timeout
        self._post_limits = self._limits(
            read_timeout, DEFAULT_TIMEOUT, DEFAULT_TIMEOUT, pool_timeout
        )
        self._session: aiohttp.ClientSession | None = None
        # The outbox's posts have a pool of their own: a 100,000-recipient run keeps all of its
        # connections busy, and conversation replies must never wait behind it.
        self._post_session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout in seconds."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the sessions (inside the running loop)."""
        if self._session is None or self._session.closed:
            self._session = self._new_session()
        if self._post_session is None or self._post_session.closed:
            self._post_session = self._new_session()

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._connections, ttl_dns_cache=300)
        return aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": self.USER_AGENT},
            # PTB checks and parses the body itself; no cookies to keep between calls.
            cookie_jar=aiohttp.DummyCookieJar(),
            raise_for_status=False,
        )

    async def shutdown(self) -> None:
        """Close the sessions and their connections."""
        for session in (self._session, self._post_session):
            if session is not None and not session.closed:
                await session.close()

    async def do_request(  # noqa: PLR0917 - the signature PTB calls
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request; a timeout is TimedOut, any other transport failure NetworkError."""
        files = request_data.multipart_data if request_data and request_data.contains_files else {}
        limits = self._limits(
            _seconds(read_timeout, self._read_timeout),
            _seconds(write_timeout, MEDIA_WRITE_TIMEOUT if files else DEFAULT_TIMEOUT),
            _seconds(connect_timeout, DEFAULT_TIMEOUT),
            _seconds(pool_timeout, self._pool_timeout),
        )
        body, headers = _body(request_data, files)
        return await self._send(method, url, body, headers, limits)

    async def post_json(self, url: str | URL, body: bytes) -> tuple[int, bytes]:
        """POST a ready JSON body with the default timeouts: the outbox's way past PTB's objects."""
        return await self._send(
            "POST", url, body, _JSON, self._post_limits, session=self._post_session
        )

    @staticmethod
    def _limits(
        read: float | None, write: float | None, connect: float | None, pool: float | None
    ) -> aiohttp.ClientTimeout:
        """PTB's four timeouts as aiohttp's."""
        # aiohttp's `connect` covers waiting for a pooled connection and opening one.
        acquire = None if connect is None or pool is None else connect + pool
        # aiohttp has no write timeout of its own: a slow upload is bounded by the whole call.
        total = None if read is None or write is None else read + write + (acquire or 0.0)
        return aiohttp.ClientTimeout(
            total=total, connect=acquire, sock_connect=connect, sock_read=read
        )

    async def _send(
        self,
        method: str,
        url: str | URL,
        body: Any,
        headers: dict[str, str] | None,
        limits: aiohttp.ClientTimeout,
        *,
        session: aiohttp.ClientSession | None = None,
    ) -> tuple[int, bytes]:
        """One request (on PTB's session unless given another); a timeout is TimedOut, any
        other transport failure NetworkError."""
        session = session or self._session
        if session is None or session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        try:
            async with session.request(
                method, url, data=body, headers=headers, timeout=limits
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            # The type only: the message would carry the URL, and the URL carries the token.
            raise NetworkError(f"aiohttp.{type(exc).__name__}") from exc


def _body(
    request_data: RequestData | None, files: dict[str, Any]
) -> tuple[Any, dict[str, str] | None]:
    """The parameters as one JSON object, or multipart with the files when there are any."""
    if request_data is None:
        return None, None
    if not files:
        # One json.dumps of the whole call: cheaper than PTB's per-field JSON, then urlencoded.
        return json.dumps(request_data.parameters).encode(), _JSON
    form = aiohttp.FormData(quote_fields=False)
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mime_type) in files.items():
        data = content if isinstance(content, bytes | bytearray) else content.read()
        form.add_field(name, data, filename=filename, content_type=mime_type)
    return form, None

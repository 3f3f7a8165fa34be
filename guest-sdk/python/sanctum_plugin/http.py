"""Outgoing HTTP for a plugin: `http.get(url)` and friends, a small `requests`-like client.

Inside sanctum it speaks plain `wasi:http/outgoing-handler`, which the host links for every
plugin and which refuses every origin the operator's policy does not grant (`[[plugins.<name>.http]]`);
a refusal raises `HttpError` with `kind == "denied"`. Under plain Python it uses `urllib`, and the
stand-in's `http_origins` decides what is granted, so a plugin's own tests see the same refusals.

A non-2xx status is a `Response` like any other (`response.ok` is false), as in `requests`;
`HttpError` means no response came: denied, timed out, could not connect, or too large.

Every import the component needs is made at module level (componentize-py bundles only what is
imported while it builds).
"""

from __future__ import annotations

import dataclasses
import json as _json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from . import _host

try:  # Inside a component built with the SDK's world (guest-sdk/python/wit/).
    from componentize_py_types import Err, Ok
    from wit_world.imports import outgoing_handler as _handler
    from wit_world.imports import streams as _streams
    from wit_world.imports import wasi_http_types as _h

    _HAVE_WASI_HTTP = True
except ImportError:
    _HAVE_WASI_HTTP = False

__all__ = ["HttpError", "Response", "delete", "get", "post", "put", "request"]

DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
_CHUNK = 4096  # wasi:io's blocking write-and-flush takes at most 4096 bytes at a time


class HttpError(Exception):
    """No response: `kind` is `denied` (not granted by the operator), `timeout`, `connection`,
    `too-large` (the body passed `max_bytes`) or `invalid` (a URL or header the client refused)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclasses.dataclass
class Response:
    """A response: status, headers (lower-case names; repeated ones joined with `, `) and body."""

    status: int
    headers: dict[str, str]
    content: bytes
    url: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return _json.loads(self.content)

    def raise_for_status(self) -> Response:
        if not self.ok:
            raise HttpError("status", f"{self.url} answered {self.status}")
        return self


def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
    json: Any = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Response:
    """Send one request and read the whole response (up to `max_bytes`)."""
    headers = {name.lower(): value for name, value in (headers or {}).items()}
    if json is not None:
        body = _json.dumps(json)
        headers.setdefault("content-type", "application/json")
    payload = body.encode() if isinstance(body, str) else body
    if payload is not None:
        # A known length rather than chunked encoding, which some servers do not read.
        headers.setdefault("content-length", str(len(payload)))
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HttpError("invalid", f"{url!r} is not an http(s) URL")
    if _HAVE_WASI_HTTP:
        return _send_wasi(method.upper(), parts, url, headers, payload, timeout, max_bytes)
    return _send_native(method.upper(), parts, url, headers, payload, timeout, max_bytes)


def get(url: str, **options: Any) -> Response:
    return request("GET", url, **options)


def post(url: str, **options: Any) -> Response:
    return request("POST", url, **options)


def put(url: str, **options: Any) -> Response:
    return request("PUT", url, **options)


def delete(url: str, **options: Any) -> Response:
    return request("DELETE", url, **options)


def _send_wasi(method, parts, url, headers, payload, timeout, max_bytes) -> Response:
    methods = {
        "GET": _h.Method_Get,
        "HEAD": _h.Method_Head,
        "POST": _h.Method_Post,
        "PUT": _h.Method_Put,
        "DELETE": _h.Method_Delete,
        "PATCH": _h.Method_Patch,
        "OPTIONS": _h.Method_Options,
    }
    try:
        fields = _h.Fields.from_list([(name, value.encode()) for name, value in headers.items()])
    except Err as error:
        raise HttpError("invalid", f"a header was refused ({type(error.value).__name__})") from None
    outgoing = _h.OutgoingRequest(fields)
    outgoing.set_method(methods[method]() if method in methods else _h.Method_Other(method))
    outgoing.set_scheme(_h.Scheme_Https() if parts.scheme == "https" else _h.Scheme_Http())
    outgoing.set_authority(parts.netloc)
    outgoing.set_path_with_query(urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, "")))
    options = _h.RequestOptions()
    nanos = int(timeout * 1e9)
    for setter in (options.set_connect_timeout, options.set_first_byte_timeout, options.set_between_bytes_timeout):
        try:
            setter(nanos)
        except Err:
            pass  # The host may keep its own limits; the operator's timeout applies either way.
    outgoing_body = outgoing.body()
    try:
        future = _handler.handle(outgoing, options)
    except Err as error:
        raise _error_of(error.value, url) from None
    if payload:
        with outgoing_body.write() as stream:
            for start in range(0, len(payload), _CHUNK):
                stream.blocking_write_and_flush(payload[start : start + _CHUNK])
    _h.OutgoingBody.finish(outgoing_body, None)
    with future:
        with future.subscribe() as ready:
            ready.block()
        outcome = future.get()
    if outcome is None or isinstance(outcome, Err):
        raise HttpError("connection", f"{url}: the response was lost")
    inner = outcome.value
    if isinstance(inner, Err):
        raise _error_of(inner.value, url)
    response = inner.value
    with response:
        status = response.status()
        with response.headers() as fields:
            received: dict[str, str] = {}
            for name, value in fields.entries():
                text = value.decode("latin-1")
                received[name] = f"{received[name]}, {text}" if name in received else text
        content = _read_wasi_body(response, url, max_bytes)
    return Response(status=status, headers=received, content=content, url=url)


def _read_wasi_body(response, url: str, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    body = response.consume()
    with body:
        with body.stream() as stream:
            while True:
                try:
                    chunk = stream.blocking_read(65536)
                except Err as error:
                    if isinstance(error.value, _streams.StreamError_Closed):
                        break
                    raise HttpError("connection", f"{url}: the body could not be read") from None
                size += len(chunk)
                if size > max_bytes:
                    raise HttpError("too-large", f"{url}: the body is over {max_bytes} bytes")
                chunks.append(chunk)
    return b"".join(chunks)


def _error_of(code: Any, url: str) -> HttpError:
    """A wasi:http error code as the plugin author reads it."""
    name = type(code).__name__.removeprefix("ErrorCode_")
    if name == "HttpRequestDenied":
        return HttpError("denied", f"{url}: the operator's policy does not grant this origin")
    if "Timeout" in name:
        return HttpError("timeout", f"{url}: {name}")
    if name.startswith("HttpRequestUri") or name == "HttpRequestMethodInvalid":
        return HttpError("invalid", f"{url}: {name}")
    if name == "HttpResponseBodySize":
        return HttpError("too-large", f"{url}: the response passed the operator's size limit")
    return HttpError("connection", f"{url}: {name}")


def _send_native(method, parts, url, headers, payload, timeout, max_bytes) -> Response:
    port = parts.port or (443 if parts.scheme == "https" else 80)
    origin = f"{parts.scheme}://{parts.hostname}:{port}"
    if origin not in _host.granted_origins():
        raise HttpError("denied", f"{url}: the operator's policy does not grant this origin")
    native = urllib.request.Request(url, data=payload, headers=headers, method=method)
    try:
        with urllib.request.urlopen(native, timeout=timeout) as answer:  # noqa: S310 (origin checked)
            return Response(answer.status, _lower(answer.headers), _read_native(answer, url, max_bytes), url)
    except urllib.error.HTTPError as answer:
        return Response(answer.code, _lower(answer.headers), _read_native(answer, url, max_bytes), url)
    except TimeoutError:
        raise HttpError("timeout", f"{url}: no answer within {timeout} s") from None
    except (urllib.error.URLError, OSError) as error:
        raise HttpError("connection", f"{url}: {error}") from None


def _lower(headers: Any) -> dict[str, str]:
    received: dict[str, str] = {}
    for name, value in headers.items():
        name = name.lower()
        received[name] = f"{received[name]}, {value}" if name in received else value
    return received


def _read_native(answer: Any, url: str, max_bytes: int) -> bytes:
    content = answer.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise HttpError("too-large", f"{url}: the body is over {max_bytes} bytes")
    return content

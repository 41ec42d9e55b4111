"""What a failed storage request means: the one translation of foreign errors for object stores.

:func:`classify` turns an exception from gcsfs, s3fs, botocore, aiohttp, google-auth or
obstore (and builtin OSErrors and timeouts) into a :class:`Failure`: its kind (the object is
:data:`MISSING`, credentials or permissions were refused (:data:`PERMISSION`), a byte range
starts past the end of the object (:data:`OUT_OF_RANGE`: 416, S3's ``InvalidRange``), a retry
may succeed (:data:`TRANSIENT`: 5xx, 408, 429, S3's ``SlowDown``, a reset or dropped
connection, a body cut short, a timeout) or not (:data:`FATAL`)) and a one-line description
naming the HTTP status and error code where there is one. The retry policy
(:mod:`bigarrays_core.kvstore.retry`) and the stores decide what to do with each kind; this
module raises nothing.

It imports nothing from bigarrays; the SDKs are imported lazily, only to recognise their
exception classes.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import re
from dataclasses import dataclass

__all__ = ["FATAL", "MISSING", "OUT_OF_RANGE", "PERMISSION", "TIMEOUTS", "TRANSIENT", "Failure", "classify"]

MISSING, PERMISSION, TRANSIENT, FATAL = "missing", "permission", "transient", "fatal"
OUT_OF_RANGE = "out-of-range"

_PERMISSION_CODES = frozenset(
    {
        "AccessDenied", "AccountProblem", "AllAccessDisabled", "ExpiredToken", "InvalidAccessKeyId",
        "InvalidSecurity", "InvalidToken", "NotSignedUp", "RequestTimeTooSkewed",
        "SignatureDoesNotMatch", "TokenRefreshRequired", "UnauthorizedAccess",
    }
)  # fmt: skip
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound"})
_OUT_OF_RANGE_CODES = frozenset({"InvalidRange"})
_TRANSIENT_CODES = frozenset(
    {
        "InternalError", "RequestLimitExceeded", "RequestTimeout", "ServiceUnavailable", "SlowDown",
        "Throttling", "ThrottlingException", "TooManyRequests",
    }
)  # fmt: skip
# asyncio.TimeoutError is the builtin TimeoutError only from Python 3.11 on.
TIMEOUTS = (TimeoutError, asyncio.TimeoutError)
# errno values s3fs gives OSErrors it translated from 5xx / SlowDown responses.
_TRANSIENT_ERRNOS = frozenset({errno.EBUSY, errno.EREMOTEIO, errno.ETIMEDOUT, errno.ECONNRESET, errno.EAGAIN})


@dataclass(frozen=True)
class Failure:
    """One failed request: its ``kind`` (:data:`MISSING`, ...), a one-line ``detail`` for
    messages, whether it ``timed_out``, and the seconds the server asked to wait before a
    retry (``Retry-After``), if it did."""

    kind: str
    detail: str
    timed_out: bool = False
    retry_after: float | None = None


def _kind_of_status(status: int) -> str:
    if status in (404, 410):
        return MISSING
    if status in (401, 403):
        return PERMISSION
    if status == 416:
        return OUT_OF_RANGE
    if status in (408, 425, 429) or status >= 500:
        return TRANSIENT
    return FATAL


def _status_and_code(exc: BaseException) -> tuple[int | None, str | None, str | None]:
    """The HTTP status, error code and server message an SDK exception carries, if any."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:  # botocore ClientError
        error = response.get("Error") or {}
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return (int(status) if status else None), error.get("Code"), error.get("Message")
    name = type(exc).__name__
    if name == "HttpError" and type(exc).__module__.startswith("gcsfs"):
        try:
            return int(exc.code), None, getattr(exc, "message", None)  # type: ignore[attr-defined]
        except (TypeError, ValueError):
            return None, None, None
    if name == "ClientResponseError" or any(c.__name__ == "ClientResponseError" for c in type(exc).__mro__):
        status = getattr(exc, "status", None)
        return (int(status) if status else None), None, getattr(exc, "message", None)
    if type(exc).__module__.startswith("obstore"):
        return _obstore_status_and_code(str(exc))
    return None, None, None


# obstore (Rust object_store) puts the answer in its message: "... Server returned non-2xx
# status code: 503 Service Unavailable: <body>", with S3's XML error body when there is one.
_OBSTORE_STATUS = re.compile(r"non-2xx status code: (\d{3})[^:]*:?(.*)")
_XML_CODE = re.compile(r"<Code>([^<]*)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")


def _obstore_status_and_code(text: str) -> tuple[int | None, str | None, str | None]:
    m = _OBSTORE_STATUS.search(text)
    if m is None:
        return None, None, None
    body = m.group(2)
    code, message = _XML_CODE.search(body), _XML_MESSAGE.search(body)
    return (int(m.group(1)), code.group(1) if code else None,
            message.group(1) if message else body.strip() or None)


def _obstore_transport_failure(exc: BaseException, detail: str) -> Failure | None:
    """An obstore error without an HTTP answer: a timeout or a broken connection (transient)."""
    if not type(exc).__module__.startswith("obstore"):
        return None
    text = str(exc)
    if "kind: Timeout" in text or "TimedOut" in text:
        return Failure(TRANSIENT, detail + " (timed out)", timed_out=True)
    if "HTTP error" in text:  # error sending request, body cut short, connection reset
        return Failure(TRANSIENT, detail)
    return None


@functools.cache
def _sdk_errors() -> dict[str, tuple[type[BaseException], ...]]:
    """Exception classes of whichever SDKs are installed, grouped by what they mean."""
    permission: list[type[BaseException]] = []
    transient: list[type[BaseException]] = []
    timeouts: list[type[BaseException]] = []
    try:
        import botocore.exceptions as b

        permission += [b.NoCredentialsError, b.PartialCredentialsError, b.CredentialRetrievalError]
        transient += [b.HTTPClientError, b.ConnectionError, b.IncompleteReadError]
        timeouts += [b.ReadTimeoutError, b.ConnectTimeoutError]
    except ImportError:
        pass
    try:
        import aiohttp

        transient += [aiohttp.ClientConnectionError, aiohttp.ClientPayloadError]
    except ImportError:
        pass
    try:
        import google.auth.exceptions as g

        permission += [g.DefaultCredentialsError, g.RefreshError]
        transient += [g.TransportError]
    except ImportError:
        pass
    try:
        import requests.exceptions as r

        transient += [r.ConnectionError, r.Timeout, r.ChunkedEncodingError]
        timeouts += [r.Timeout]
    except ImportError:
        pass
    try:
        from gcsfs.retry import ChecksumError

        transient += [ChecksumError]
    except ImportError:
        pass
    return {"permission": tuple(permission), "transient": tuple(transient), "timeouts": tuple(timeouts)}


def _describe_exc(exc: BaseException, status: int | None, code: str | None, message: str | None) -> str:
    text = str(message or exc).strip()
    text = text.splitlines()[0] if text else ""
    if status is not None:
        head = f"HTTP {status}" + (f" {code}" if code and code != str(status) else "")
    else:
        head = type(exc).__name__
    out = f"{head}: {text}" if text and text != head else head
    return out if len(out) <= 300 else out[:297] + "..."


def classify(exc: BaseException) -> Failure:
    """What a foreign exception means for this store: missing, permission, transient or fatal."""
    chain = [exc]
    if exc.__cause__ is not None:  # s3fs raises translated OSErrors "from" the botocore error
        chain.append(exc.__cause__)
    for e in chain:
        status, code, message = _status_and_code(e)
        if status is None and code is None:
            continue
        detail = _describe_exc(e, status, code, message)
        if code in _PERMISSION_CODES:
            return Failure(PERMISSION, detail)
        if code in _MISSING_CODES:
            return Failure(MISSING, detail)
        if code in _OUT_OF_RANGE_CODES:
            return Failure(OUT_OF_RANGE, detail)
        if code in _TRANSIENT_CODES:
            return Failure(TRANSIENT, detail)
        if status is not None:
            return Failure(_kind_of_status(status), detail)
    detail = _describe_exc(exc, None, None, None)
    transport = _obstore_transport_failure(exc, detail)
    if transport is not None:
        return transport
    sdk = _sdk_errors()
    if isinstance(exc, TIMEOUTS) or isinstance(exc, sdk["timeouts"]):
        return Failure(TRANSIENT, detail, timed_out=True)
    if isinstance(exc, FileNotFoundError):
        return Failure(MISSING, detail)
    if isinstance(exc, PermissionError) or isinstance(exc, sdk["permission"]):
        return Failure(PERMISSION, detail)
    if isinstance(exc, OSError) and str(exc).startswith("Forbidden"):  # gcsfs's 403
        return Failure(PERMISSION, detail)
    if isinstance(exc, ConnectionError) or isinstance(exc, sdk["transient"]):
        if type(exc).__name__ == "ProxyError" and not str(exc):  # gcsfs's 502
            detail = "HTTP 502 (bad gateway)"
        return Failure(TRANSIENT, detail)
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return Failure(TRANSIENT, detail)
    return Failure(FATAL, detail)

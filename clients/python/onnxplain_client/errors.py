"""One error type for every refusal, the server's or this client's, as the Node client's ``OnnxplainError``.

A failed call raises :class:`OnnxplainError`: its gRPC status (``code()``, ``code_name``), the request field the
server's ``google.rpc.BadRequest`` names (``field``, e.g. ``"occlusion.stride"``), and the message without that
field repeated (``message``). It is still a ``grpc.RpcError`` with ``code()``, ``details()`` and
``trailing_metadata()``, so code written against raw grpc keeps working. A request this client cannot build
raises :class:`InvalidRequest`, an OnnxplainError with ``local`` true (and a ``ValueError``): nothing was sent.
"""

from __future__ import annotations

from typing import Any, Iterator

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


# What grpc's Python client says of a call it cancelled itself.
_GRPC_LOCAL_CANCEL = "Locally cancelled by application!"


class OnnxplainError(grpc.RpcError):
    """A call the server refused, cancelled or let run past its deadline (``from_rpc_error``), or a request this
    client would not send (``local``)."""

    def __init__(self, code: grpc.StatusCode, message: str, field: str | None = None, *,
                 cause: grpc.RpcError | None = None) -> None:
        self._code, self._cause = code, cause
        self.code_name: str = code.name
        self.field, self.message = field, message
        super().__init__(str(self))

    @classmethod
    def from_rpc_error(cls, cause: grpc.RpcError) -> "OnnxplainError":
        field = bad_request_field(cause)
        text = cause.details() or ""
        if cause.code() == grpc.StatusCode.CANCELLED and text == _GRPC_LOCAL_CANCEL:
            text = "cancelled by this client (Cancellation.cancel(), or the call's cancel())"
        message = text[len(field) + 2:] if field and text.startswith(f"{field}: ") else text
        return cls(cause.code(), message, field, cause=cause)

    @property
    def local(self) -> bool:
        """True when this client refused to send the request."""
        return self._cause is None

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str | None:
        if self._cause is not None:
            return self._cause.details()
        return f"{self.field}: {self.message}" if self.field else self.message

    def trailing_metadata(self) -> Any:
        return self._cause.trailing_metadata() if self._cause is not None else ()

    def initial_metadata(self) -> Any:
        return self._cause.initial_metadata() if self._cause is not None else ()

    def __str__(self) -> str:
        return f"{self.code_name}: {self.field}: {self.message}" if self.field else f"{self.code_name}: {self.message}"


class InvalidRequest(OnnxplainError, ValueError):
    """What was given cannot make a request (an unknown method, a parameter of another name, type or range):
    INVALID_ARGUMENT naming the field, and nothing was sent."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(grpc.StatusCode.INVALID_ARGUMENT, message, field)


def bad_request_field(error: grpc.RpcError) -> str | None:
    """The first field the status details' ``google.rpc.BadRequest`` names, or None (no details, or a status
    without a call behind it, as a channel that never connected gives)."""
    try:
        status = rpc_status.from_call(error)
    except (AttributeError, TypeError, ValueError):  # not a call, or details that disagree with the status line:
        return None  # the message still says what went wrong
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            for violation in request.field_violations:
                return violation.field
    return None


class TranslatingStub:
    """A generated stub whose calls raise :class:`OnnxplainError` for a failed status, streamed calls included
    (a stream still answers ``cancel()`` and the other methods of its call)."""

    def __init__(self, stub: Any) -> None:
        self._stub = stub

    def __getattr__(self, name: str) -> Any:
        return _TranslatingMethod(getattr(self._stub, name))


class _TranslatingMethod:
    """One multi-callable: calling it, ``with_call`` and ``future`` translate; the rest is grpc's own."""

    def __init__(self, method: Any) -> None:
        self._method = method

    def __call__(self, *args, **kwargs) -> Any:
        try:
            answer = self._method(*args, **kwargs)
        except grpc.RpcError as error:
            _raise_translated(error)
        # A unary call answers a message; a server-streaming call answers an iterator that fails as it is read.
        return _TranslatingStream(answer) if isinstance(answer, grpc.Call) else answer

    def with_call(self, *args, **kwargs) -> Any:
        try:
            return self._method.with_call(*args, **kwargs)
        except grpc.RpcError as error:
            _raise_translated(error)

    def future(self, *args, **kwargs) -> Any:
        return _TranslatingFuture(self._method.future(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._method, name)


class _TranslatingFuture:
    """A unary call's future whose ``result()`` raises, and ``exception()`` returns, an OnnxplainError."""

    def __init__(self, future: Any) -> None:
        self._future = future

    def result(self, timeout: float | None = None) -> Any:
        try:
            return self._future.result(timeout)
        except grpc.RpcError as error:
            _raise_translated(error)

    def exception(self, timeout: float | None = None) -> Any:
        error = self._future.exception(timeout)
        return OnnxplainError.from_rpc_error(error) if isinstance(error, grpc.RpcError) and _has_status(error) \
            else error

    def __getattr__(self, name: str) -> Any:  # cancel(), done(), add_done_callback(), code(), ...
        return getattr(self._future, name)


class _TranslatingStream:
    def __init__(self, call: Any) -> None:
        self._call = call

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._call)
        except grpc.RpcError as error:
            _raise_translated(error)

    next = __next__  # grpc's streams also have it

    def __getattr__(self, name: str) -> Any:  # cancel(), code(), details(), is_active(), ...
        return getattr(self._call, name)


def _has_status(error: grpc.RpcError) -> bool:
    return not isinstance(error, OnnxplainError) and callable(getattr(error, "code", None))


def _raise_translated(error: grpc.RpcError):
    """Raise ``error`` as an OnnxplainError when it carries a status; an RpcError without one as it is. grpc's
    own error is kept as ``_cause``, not chained: its traceback would only repeat this one."""
    if not _has_status(error):
        raise error
    raise OnnxplainError.from_rpc_error(error) from None

"""Errors the service raises, independent of gRPC.

Explainers, jobs and the model runtime raise these; the API layer maps each
class to its gRPC status code (``service.api.status``). Every error names the
request field at fault, when there is one, so the message tells the caller
what to change.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: a message for the caller and the request field it concerns."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidArgument(ServiceError):
    """The request is malformed or a value is out of range."""


class NotFound(ServiceError):
    """A named model, method or file does not exist."""


class AlreadyExists(ServiceError):
    """A model of that name is already loaded."""


class FailedPrecondition(ServiceError):
    """The request is valid but the server is not in a state to serve it."""


class ResourceExhausted(ServiceError):
    """Too much work is queued, or a result would be too large."""


class Cancelled(ServiceError):
    """The caller cancelled the request."""


class DeadlineExceeded(ServiceError):
    """The request's deadline passed before the work finished."""

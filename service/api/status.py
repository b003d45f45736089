"""Service errors as gRPC statuses, with ``google.rpc`` details a client can read.

An INVALID_ARGUMENT carries a ``BadRequest`` naming the field at fault, as
Google's API design guide and KServe/Triton clients expect.
"""

from __future__ import annotations

import functools
import inspect
import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from service import errors

log = logging.getLogger(__name__)

CODES: dict[type[errors.ServiceError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Cancelled: grpc.StatusCode.CANCELLED,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
}


# Statuses travel in trailing metadata, which clients cap at 8 KiB: a message that echoes a hostile request
# (a shape of 1,000 dimensions) is cut so that the status itself arrives.
MAX_MESSAGE_CHARS = 1000


def _cut(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS - 3] + "..."


def to_grpc_status(error: errors.ServiceError) -> grpc.Status:
    code = CODES[type(error)]
    status = status_pb2.Status(code=code.value[0], message=_cut(str(error)))
    if error.field:
        violation = error_details_pb2.BadRequest.FieldViolation(field=_cut(error.field),
                                                                description=_cut(error.message))
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
        status.details.append(detail)
    return rpc_status.to_status(status)


def translate_errors(handler):
    """Turn ServiceErrors raised by a unary or server-streaming handler into their statuses.

    Anything else is a bug: logged with its traceback and answered INTERNAL.
    """

    async def abort(error: Exception, context, name: str) -> None:
        if isinstance(error, errors.ServiceError):
            log.info("request refused", extra={"rpc": name, "error": str(error), "code": CODES[type(error)].name})
            await context.abort_with_status(to_grpc_status(error))
        log.exception("internal error", extra={"rpc": name})
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error ({error.__class__.__name__}); "
                                                      "the server log has the details")

    if inspect.isasyncgenfunction(handler):
        @functools.wraps(handler)
        async def streaming(self, request, context):
            try:
                async for message in handler(self, request, context):
                    yield message
            except Exception as error:  # noqa: BLE001 - translated, never swallowed
                await abort(error, context, handler.__name__)
        return streaming

    @functools.wraps(handler)
    async def unary(self, request, context):
        try:
            return await handler(self, request, context)
        except Exception as error:  # noqa: BLE001 - translated, never swallowed
            await abort(error, context, handler.__name__)
    return unary


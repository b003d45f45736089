"""Request bodies that do not parse as the RPC's message get INVALID_ARGUMENT, not UNKNOWN.

grpcio answers a request whose deserializer raises with a bare UNKNOWN and logs a
traceback. This interceptor gives every unary-request handler a deserializer that
keeps the parse error instead, and a behaviour that answers it as the caller's fault.
Streaming-request RPCs (reflection) keep grpcio's handling.
"""

from __future__ import annotations

import inspect
import logging

import grpc
from google.protobuf.message import DecodeError

log = logging.getLogger(__name__)


class _Undecodable:
    def __init__(self, error: Exception) -> None:
        self.error = error


class UndecodableRequestInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        method = handler_call_details.method
        deserialize = handler.request_deserializer

        def tolerant(data: bytes):
            try:
                return deserialize(data)
            except (DecodeError, ValueError, RuntimeWarning) as error:  # upb raises DecodeError; bad UTF-8 too
                return _Undecodable(error)

        behaviour = handler.unary_stream if handler.response_streaming else handler.unary_unary
        message = f"the request body is not a valid {method.rsplit('/', 1)[-1]} request message"

        async def refuse(request, context):
            log.info("request refused", extra={"rpc": method, "error": f"undecodable body: {request.error}",
                                               "code": "INVALID_ARGUMENT"})
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)

        if inspect.isasyncgenfunction(behaviour):
            async def checked_stream(request, context):
                if isinstance(request, _Undecodable):
                    await refuse(request, context)
                async for response in behaviour(request, context):
                    yield response
            new = checked_stream
        else:
            async def checked(request, context):
                if isinstance(request, _Undecodable):
                    await refuse(request, context)
                return await behaviour(request, context)
            new = checked

        factory = grpc.unary_stream_rpc_method_handler if handler.response_streaming \
            else grpc.unary_unary_rpc_method_handler
        return factory(new, request_deserializer=tolerant, response_serializer=handler.response_serializer)

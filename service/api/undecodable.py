"""Request bodies that do not parse as the RPC's message get INVALID_ARGUMENT, not UNKNOWN.

grpcio answers a request whose deserializer raises with a bare UNKNOWN and logs a
traceback. This interceptor gives every handler a deserializer that keeps the parse
error instead, and a behaviour that answers it as the caller's fault: before the
handler runs for a single request, or when a request stream reaches the bad message.
"""

from __future__ import annotations

import inspect
import logging

import grpc
from google.protobuf.message import DecodeError

log = logging.getLogger(__name__)

_FACTORIES = {
    (False, False): (grpc.unary_unary_rpc_method_handler, "unary_unary"),
    (False, True): (grpc.unary_stream_rpc_method_handler, "unary_stream"),
    (True, False): (grpc.stream_unary_rpc_method_handler, "stream_unary"),
    (True, True): (grpc.stream_stream_rpc_method_handler, "stream_stream"),
}


class _Undecodable:
    def __init__(self, error: Exception) -> None:
        self.error = error


class UndecodableRequestInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        method = handler_call_details.method
        deserialize = handler.request_deserializer
        factory, kind = _FACTORIES[(handler.request_streaming, handler.response_streaming)]
        behaviour = getattr(handler, kind)

        def tolerant(data: bytes):
            try:
                return deserialize(data)
            except (DecodeError, ValueError, RuntimeWarning) as error:  # upb raises DecodeError; bad UTF-8 too
                return _Undecodable(error)

        async def refuse(request: _Undecodable, context) -> None:
            log.info("request refused", extra={"rpc": method, "error": f"undecodable body: {request.error}",
                                               "code": "INVALID_ARGUMENT"})
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"the request body is not a valid {method.rsplit('/', 1)[-1]} request message")

        async def checked_requests(requests, context):
            async for request in requests:
                if isinstance(request, _Undecodable):
                    await refuse(request, context)
                yield request

        async def first_checked(request, context):
            """The request (or the stream of them) the handler sees, once checked."""
            if handler.request_streaming:
                return checked_requests(request, context)
            if isinstance(request, _Undecodable):
                await refuse(request, context)
            return request

        if inspect.isasyncgenfunction(behaviour):
            async def checked(request, context):
                async for response in behaviour(await first_checked(request, context), context):
                    yield response
        else:
            async def checked(request, context):
                return await behaviour(await first_checked(request, context), context)

        return factory(checked, request_deserializer=tolerant, response_serializer=handler.response_serializer)

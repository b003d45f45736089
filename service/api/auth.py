"""Optional bearer-token authentication for every RPC but health checks (and reflection, if asked)."""

from __future__ import annotations

import hmac

import grpc

# Probes must work without credentials (Kubernetes gRPC probes send none).
HEALTH_PREFIX = "/grpc.health.v1.Health/"
# Reflection lists every service and message: behind the token unless the operator makes it public.
REFLECTION_PREFIX = "/grpc.reflection."


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, token: str, *, public_reflection: bool = False) -> None:
        self._expected = f"Bearer {token}".encode()
        self._exempt = (HEALTH_PREFIX, REFLECTION_PREFIX) if public_reflection else (HEALTH_PREFIX,)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(self._exempt):
            return handler
        presented = [value for key, value in (handler_call_details.invocation_metadata or ())
                     if key == "authorization"]
        if len(presented) == 1 and isinstance(presented[0], str) \
                and hmac.compare_digest(presented[0].encode(), self._expected):
            return handler
        if not presented:
            reason = "missing 'authorization: Bearer <token>' metadata"
        elif len(presented) > 1:
            reason = f"{len(presented)} 'authorization' headers; send exactly one"
        else:
            reason = "the bearer token is not valid"
        return _refusal(handler, reason)


def _refusal(handler: grpc.RpcMethodHandler, reason: str) -> grpc.RpcMethodHandler:
    async def refuse_unary(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)

    async def refuse_stream(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)
        yield  # pragma: no cover - makes this an async generator, as streaming handlers are

    kwargs = dict(request_deserializer=handler.request_deserializer,
                  response_serializer=handler.response_serializer)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse_stream, **kwargs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse_unary, **kwargs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse_stream, **kwargs)
    return grpc.unary_unary_rpc_method_handler(refuse_unary, **kwargs)

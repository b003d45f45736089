"""The page's routes: the static page, JSON for models, methods and runs, and a run's progress as events.

Every gRPC call and every image decode runs in a thread (``run_in_threadpool`` or a run's own thread): the
event loop only moves bytes, so a slow explanation never stalls another visitor's page.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from service.ui.guard import Limits, Refusal, check_upload_size
from service.ui.runs import METRICS, RunStore, refusal_body
from service.ui.upload import validate_image

STATIC = Path(__file__).parent / "static"
EVENT_INTERVAL_S = 0.1  # how often the event stream looks for a changed state
FORM_OVERHEAD_BYTES = 64 * 1024  # the form's other fields and multipart framing, beside the image


def create_app(client, limits: Limits = Limits()) -> Starlette:
    """The page over ``client`` (an ``OnnxplainClient``, shared by every thread: gRPC channels are)."""
    store = RunStore(client, limits)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def models(request: Request) -> Response:
        infos = await run_in_threadpool(client.list_models)
        return JSONResponse({"models": [{"name": m.name, "description": m.description, "height": m.height,
                                         "width": m.width, "num_classes": m.num_classes} for m in infos]})

    async def methods(request: Request) -> Response:
        listing = await run_in_threadpool(client.list_methods)
        return JSONResponse({"methods": [_method(m) for m in listing], "metrics": sorted(METRICS),
                             "limits": {"max_upload_bytes": limits.max_upload_bytes,
                                        "max_methods": limits.max_methods}})

    async def start_run(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is None or not declared.isdigit():
            raise Refusal(411, "INVALID_ARGUMENT", "send the form with a Content-Length", "image")
        if int(declared) > limits.max_upload_bytes + FORM_OVERHEAD_BYTES:  # refused before the body is read
            raise Refusal(413, "INVALID_ARGUMENT", f"the form is {declared} bytes; an image may be at most "
                                                   f"{limits.max_upload_bytes} bytes", "image")
        async with request.form(max_files=1, max_fields=16, max_part_size=FORM_OVERHEAD_BYTES) as form:
            model = str(form.get("model") or "")
            upload = form.get("image")
            if not model:
                raise Refusal(400, "INVALID_ARGUMENT", "choose a model", "model")
            if upload is None or isinstance(upload, str):
                raise Refusal(400, "INVALID_ARGUMENT", "choose an image file (PNG or JPEG)", "image")
            check_upload_size(limits, upload.size or 0)
            image = await upload.read()
            chosen = _methods(form.get("methods"))
            seed = _seed(form.get("seed"))
        await run_in_threadpool(validate_image, image, limits)
        served = {info.name for info in await run_in_threadpool(client.list_models)}
        if model not in served:  # said before the run starts, not once per method after it
            raise Refusal(404, "NOT_FOUND", f"no model {model!r} on the server; it serves "
                                            f"{', '.join(sorted(served)) or 'none'}", "model")
        run = store.start(model, image, chosen, seed)
        return JSONResponse(run.view()[1], status_code=202)

    async def run_state(request: Request) -> Response:
        return JSONResponse(store.get(request.path_params["run_id"]).view()[1])

    async def cancel_run(request: Request) -> Response:
        return JSONResponse(store.cancel(request.path_params["run_id"]).view()[1])

    async def run_events(request: Request) -> Response:
        run = store.get(request.path_params["run_id"])

        async def stream():
            sent = -1
            while True:
                version, state = run.view()
                if version != sent:
                    sent = version
                    yield f"data: {json.dumps(state)}\n\n"
                if state["finished"] or await request.is_disconnected():
                    return
                await asyncio.sleep(EVENT_INTERVAL_S)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def refused(request: Request, error: Refusal) -> Response:
        return JSONResponse(error.body(), status_code=error.status)

    async def rpc_failed(request: Request, error: grpc.RpcError) -> Response:  # list_models, list_methods
        return JSONResponse({"error": refusal_body(error)}, status_code=502)

    async def http_error(request: Request, error: HTTPException) -> Response:  # multipart limits, 404s
        code = "NOT_FOUND" if error.status_code == 404 else "INVALID_ARGUMENT"
        return JSONResponse({"error": {"code": code, "message": str(error.detail), "field": None}},
                            status_code=error.status_code)

    routes = [
        Route("/", index),
        Route("/api/models", models),
        Route("/api/methods", methods),
        Route("/api/runs", start_run, methods=["POST"]),
        Route("/api/runs/{run_id}", run_state),
        Route("/api/runs/{run_id}/cancel", cancel_run, methods=["POST"]),
        Route("/api/runs/{run_id}/events", run_events),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={Refusal: refused, grpc.RpcError: rpc_failed,
                                                       HTTPException: http_error})
    app.state.runs = store
    return app


def _method(info) -> dict[str, Any]:
    return {"name": info.name, "description": info.description, "reference": info.reference, "cost": info.cost,
            "parameters": [{"name": p.name, "type": p.type, "default": p.default_value,
                            "description": p.description} for p in info.parameters]}


def _methods(raw) -> list[tuple[str, dict[str, Any]]]:
    """The form's ``methods``: JSON ``[{"name": "rise", "params": {"num_masks": "64"}}, ...]``; parameter values
    are JSON where they parse (``64``, ``[4, 4]``, ``true``) and text otherwise (``"sobol"``), as on the command
    line. Checked here against the client's method specs, so a wrong parameter is refused before a run starts."""
    from onnxplain_client.client import method_spec

    from service.cli.common import json_or_text

    try:
        entries = json.loads(raw if isinstance(raw, str) else "")
        chosen = [(str(e["name"]), {str(k): json_or_text(v) if isinstance(v, str) else v
                                    for k, v in (e.get("params") or {}).items()}) for e in entries]
    except (ValueError, TypeError, KeyError, AttributeError):
        raise Refusal(400, "INVALID_ARGUMENT", 'write [{"name": METHOD, "params": {NAME: VALUE}}]', "methods") from None
    for name, params in chosen:
        try:
            method_spec(name, params)
        except (ValueError, TypeError) as error:
            raise Refusal(400, "INVALID_ARGUMENT", str(error), f"methods.{name}") from None
    return chosen


def _seed(raw) -> int | None:
    text = str(raw or "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) > 2**53:  # the page shows seeds as JavaScript numbers: exact to 2^53
        raise Refusal(400, "INVALID_ARGUMENT", f"{text!r}: a whole number from 0 to 2^53", "seed")
    return int(text)

"""Serving and the quick commands: serve, models, predict, health, demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from service import __version__
from service.cli.common import connect, existing_directory, existing_files, fail, progress_bar
from service.config import Settings


def serve(args: argparse.Namespace) -> None:
    from service.api.server import serve
    from service.runtime.providers import DevicePreference

    existing_directory(args.models_dir, "--models-dir")
    for flag, threads in (("--workers", args.workers), ("--interactive-workers", args.interactive_workers)):
        if threads is not None and threads < 1:
            fail(f"{threads}: the server needs at least one thread here", flag)
    settings = Settings.from_env(
        models_dir=args.models_dir, host=args.host, port=args.port, token_file=args.token_file,
        tls_cert=args.tls_cert, tls_key=args.tls_key, workers=args.workers,
        interactive_workers=args.interactive_workers, batch_size=args.batch_size,
        max_message_mb=args.max_message_mb, device=DevicePreference(args.device) if args.device else None,
        metrics_port=args.metrics_port, shutdown_grace_s=args.shutdown_grace,
    )

    def started(server, port: int) -> None:
        names = ", ".join(m.info.name for m in server.repository.list()) or "none"
        providers = {m.info.provider for m in server.repository.list()} or {"-"}
        print(f"onnxplain {__version__} serving on {settings.host}:{port} (models: {names}; "
              f"provider: {', '.join(sorted(providers))})", file=sys.stderr, flush=True)

    asyncio.run(serve(settings, on_started=started))


def models(args: argparse.Namespace) -> None:
    from google.protobuf import json_format

    existing_directory(args.models_dir, "--models-dir")
    with connect(args) as (client, _):
        models = client.list_models()
    if args.json:
        print(json.dumps([json_format.MessageToDict(m, preserving_proto_field_name=True) for m in models], indent=2))
        return
    for m in models:
        size = f"{'*' if m.dynamic_height else m.height}x{'*' if m.dynamic_width else m.width}x{m.channels}"
        print(f"{m.name:20} {size} {len(m.labels) or m.num_classes} classes  "
              f"{m.provider}  {_batch(m)}  {m.source}")


def _batch(model) -> str:
    """The batch one session call takes and how the batch axis is served: "batch 32 (freed)"."""
    return f"batch {model.max_batch} ({model.batch_axis or 'dynamic'})"


def predict(args: argparse.Namespace) -> None:
    existing_files(*args.images)
    with connect(args, args.model) as (client, name):
        predictions = client.predict(name, [p.read_bytes() for p in args.images], top_k=args.top_k,
                                     probabilities=args.probabilities)
    if args.json:
        print(json.dumps([{"image": str(p), "top": [{"class_index": i, "label": label, "score": s}
                                                    for i, label, s in pred.top]}
                          for p, pred in zip(args.images, predictions)], indent=2))
        return
    for path, prediction in zip(args.images, predictions):
        best = ", ".join(f"{label} ({score:.3f})" for _, label, score in prediction.top)
        print(f"{path}: {best}")


def health(args: argparse.Namespace) -> int:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    settings = Settings.from_env()
    address = args.server or f"localhost:{settings.port}"
    if settings.tls_cert:
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(settings.tls_cert.read_bytes()))
    else:
        channel = grpc.insecure_channel(address)
    with channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=args.timeout)
    serving = status.status == health_pb2.HealthCheckResponse.SERVING
    print(health_pb2.HealthCheckResponse.ServingStatus.Name(status.status))
    return 0 if serving else 1


def demo(args: argparse.Namespace) -> None:
    from service.config import bundled_models_dir
    from service.demo import run_demo
    from service.demo.methods import parse_methods
    from service.demo.run import demo_models

    if args.samples_per_model < 1:
        fail(f"{args.samples_per_model}: explain at least one sample per model", "--samples-per-model")
    try:
        methods = parse_methods(args.methods)
    except ValueError as error:
        fail(str(error), "--methods")
    existing_directory(args.models_dir, "--models-dir")
    models_dir = args.models_dir or bundled_models_dir()
    available = demo_models(models_dir)
    if not available:
        fail(f"no model under {models_dir} ships samples (MODEL/samples/manifest.json)", "--models-dir")
    models = [name.strip() for name in args.models.split(",") if name.strip()] if args.models else None
    unknown = [name for name in models or [] if name not in available]
    if unknown or models == []:
        fail(f"unknown model(s) {', '.join(unknown) or '(none given)'}; models with samples: {', '.join(available)}",
             "--models")
    with progress_bar("demo", unit="map") as on_progress:
        run_demo(models_dir, args.out, samples_per_model=args.samples_per_model, methods=methods, models=models,
                 on_progress=on_progress)

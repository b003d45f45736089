"""The ``onnxplain`` command: serve, list models, predict, explain, and the demo.

``predict`` and ``explain`` talk to ``--server`` when given; otherwise MODEL is a
local .onnx file (or model directory) and an in-process server on a free port
serves it for the duration of the command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator

from service import __version__, logs
from service.config import Settings, bundled_models_dir


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(args.log_level)
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # report gRPC and usage errors as one line, not a traceback
        code = getattr(error, "code", None)
        if callable(code) and hasattr(error, "details"):
            print(f"error: {code().name}: {error.details()}", file=sys.stderr)
            return 1
        raise


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onnxplain", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"onnxplain {__version__}")
    parser.add_argument("--log-level", default=os.environ.get("ONNXPLAIN_LOG_LEVEL", "WARNING"))
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--models-dir", type=Path, help="model repository (env ONNXPLAIN_MODELS_DIR)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1; 0.0.0.0 in Docker)")
    serve.add_argument("--port", type=int, help="port (default 50051)")
    serve.add_argument("--token-file", type=Path, help="require this bearer token (env ONNXPLAIN_TOKEN[_FILE])")
    serve.add_argument("--tls-cert", type=Path)
    serve.add_argument("--tls-key", type=Path)
    serve.add_argument("--device", choices=["auto", "cpu", "cuda"])
    serve.add_argument("--workers", type=int)
    serve.add_argument("--batch-size", type=int)
    serve.add_argument("--max-message-mb", type=int)
    serve.set_defaults(run=_serve)

    models = commands.add_parser("models", help="list the models a server holds")
    _client_options(models)
    models.add_argument("--models-dir", type=Path, help="without --server: list this repository's models")
    models.add_argument("--json", action="store_true")
    models.set_defaults(run=_models)

    predict = commands.add_parser("predict", help="top classes of images")
    _client_options(predict)
    predict.add_argument("model", help="model name on --server, else a local .onnx file or model directory")
    predict.add_argument("images", nargs="+", type=Path)
    predict.add_argument("--top-k", type=int, default=5)
    predict.add_argument("--probabilities", action="store_true", help="report probabilities, not raw outputs")
    predict.add_argument("--json", action="store_true")
    predict.set_defaults(run=_predict)

    explain = commands.add_parser("explain", help="explain one image; writes .npy maps and overlay PNGs")
    _client_options(explain)
    explain.add_argument("model", help="model name on --server, else a local .onnx file or model directory")
    explain.add_argument("image", type=Path)
    explain.add_argument("--method", default="occlusion")
    explain.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                         help="method parameter, VALUE in JSON (e.g. -p window=8 -p stride=[4,4])")
    explain.add_argument("--class", dest="classes", type=int, action="append", default=[],
                         help="class index to explain (repeatable); default the predicted class")
    explain.add_argument("--top-k", type=int, default=0, help="explain the k best classes")
    explain.add_argument("--seed", type=int)
    explain.add_argument("--baseline", default=None,
                         help="black, white, dataset_mean, image_mean, or a pixel value in [0, 1]")
    explain.add_argument("--probabilities", action="store_true", help="explain probabilities, not raw outputs")
    explain.add_argument("--batch-size", type=int, default=0)
    explain.add_argument("--out", type=Path, default=Path("out"))
    explain.add_argument("--json", action="store_true", help="also write and print the result as JSON")
    explain.set_defaults(run=_explain)

    consistency = commands.add_parser(
        "consistency", help="how much maps change with the baseline and parameters, and how rankings of the "
                            "settings change with the metric's baseline (Brunke et al. 2020)")
    _client_options(consistency)
    consistency.add_argument("model", help="model name on --server, else a local .onnx file or model directory")
    consistency.add_argument("image", type=Path)
    consistency.add_argument("--method", default="occlusion")
    consistency.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                             help="a parameter shared by every setting")
    consistency.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                             help="a parameter to vary (repeatable: the settings are the product)")
    consistency.add_argument("--baseline", action="append", default=[],
                             help="a baseline to vary (repeatable; default black, dataset_mean, blur)")
    consistency.add_argument("--metric", default="deletion", help="the metric that ranks the settings")
    consistency.add_argument("--metric-baseline", action="append", default=[],
                             help="a baseline for the metric (repeatable; default black, dataset_mean, blur)")
    consistency.add_argument("--class", dest="class_index", type=int)
    consistency.add_argument("--seed", type=int)
    consistency.add_argument("--probabilities", action="store_true")
    consistency.add_argument("--top-fraction", type=float, default=0.1)
    consistency.add_argument("--out", type=Path, default=Path("out"))
    consistency.add_argument("--json", action="store_true", help="also print the result as JSON")
    consistency.set_defaults(run=_consistency)

    check = commands.add_parser("health", help="exit 0 when a server answers SERVING (Docker's health check)")
    check.add_argument("--server", default=None, help="host:port; default localhost and ONNXPLAIN_PORT")
    check.add_argument("--timeout", type=float, default=3.0)
    check.set_defaults(run=_health)

    demo = commands.add_parser("demo", help="explain the bundled sample images; writes out/demo/")
    demo.add_argument("--models-dir", type=Path, default=None)
    demo.add_argument("--out", type=Path, default=Path("out/demo"))
    demo.set_defaults(run=_demo)
    return parser


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", help="host:port of a running server; default: an in-process one")
    parser.add_argument("--token", default=os.environ.get("ONNXPLAIN_TOKEN"), help="bearer token")
    parser.add_argument("--tls-ca", type=Path, help="CA certificate for a TLS server")


# --- commands ---------------------------------------------------------------------------------------------------

def _serve(args: argparse.Namespace) -> None:
    from service.api.server import serve
    from service.runtime.providers import DevicePreference

    settings = Settings.from_env(
        models_dir=args.models_dir, host=args.host, port=args.port, token_file=args.token_file,
        tls_cert=args.tls_cert, tls_key=args.tls_key, workers=args.workers, batch_size=args.batch_size,
        max_message_mb=args.max_message_mb, device=DevicePreference(args.device) if args.device else None,
    )

    def started(server, port: int) -> None:
        names = ", ".join(m.info.name for m in server.repository.list()) or "none"
        providers = {m.info.provider for m in server.repository.list()} or {"-"}
        print(f"onnxplain {__version__} serving on {settings.host}:{port} (models: {names}; "
              f"provider: {', '.join(sorted(providers))})", file=sys.stderr, flush=True)

    asyncio.run(serve(settings, on_started=started))


@contextlib.contextmanager
def _connect(args: argparse.Namespace, model: str | None = None) -> Iterator[tuple[Any, str | None]]:
    """A client and the model's name on the server: --server's, or an in-process server's."""
    from onnxplain_client import OnnxplainClient

    if args.server:
        root = args.tls_ca.read_bytes() if args.tls_ca else None
        with OnnxplainClient(args.server, token=args.token, root_certificates=root) as client:
            yield client, model
        return
    from service.api.server import EmbeddedServer

    if model is None:  # the whole repository, loaded
        settings = Settings(models_dir=getattr(args, "models_dir", None) or bundled_models_dir())
        path = None
    else:  # one model file, loaded by path
        path = Path(model).resolve()
        if not path.exists():
            raise SystemExit(f"error: {model} is neither a local model file nor (without --server) a model name")
        settings = Settings(models_dir=path.parent, preload=False)
    with EmbeddedServer(settings) as address:
        with OnnxplainClient(address) as client:
            name = client.load_model(path.name).name if path is not None else None
            yield client, name


def _models(args: argparse.Namespace) -> None:
    from google.protobuf import json_format

    with _connect(args) as (client, _):
        models = client.list_models()
    if args.json:
        print(json.dumps([json_format.MessageToDict(m, preserving_proto_field_name=True) for m in models], indent=2))
        return
    for m in models:
        print(f"{m.name:20} {m.height}x{m.width}x{m.channels} {len(m.labels) or m.num_classes} classes  "
              f"{m.provider}  {m.source}")


def _predict(args: argparse.Namespace) -> None:
    with _connect(args, args.model) as (client, name):
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


def _explain(args: argparse.Namespace) -> None:
    import numpy as np

    from service import render

    params = _parse_params(args.param)
    with _connect(args, args.model) as (client, name), _progress_bar(args.method) as on_progress:
        explanation = client.explain(name, args.image.read_bytes(), args.method, params, classes=args.classes,
                                     top_k=args.top_k, seed=args.seed, baseline=_baseline(args.baseline),
                                     probabilities=args.probabilities, batch_size=args.batch_size,
                                     on_progress=on_progress)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.image.stem}.{explanation.method}"
    maps_path = args.out / f"{stem}.npy"
    np.save(maps_path, np.stack([a.map for a in explanation.attributions]))
    targets = []
    for attribution in explanation.attributions:
        picture = render.save_png(render.overlay(explanation.image, attribution.map),
                                  args.out / f"{stem}.{attribution.class_index}.png", upscale=4)
        targets.append({"class_index": attribution.class_index, "label": attribution.label,
                        "score": attribution.score, "overlay": str(picture)})
        print(f"{attribution.label} (class {attribution.class_index}, score {attribution.score:.4f}): {picture}")
    print(f"{explanation.forward_passes} forward passes in {explanation.timings.get('total_ms', 0):.0f} ms on "
          f"{explanation.provider}; seed {explanation.seed}; maps: {maps_path}")
    if args.json:
        summary = {"image": str(args.image), "method": explanation.method, "parameters": explanation.parameters,
                   "seed": explanation.seed, "forward_passes": explanation.forward_passes,
                   "provider": explanation.provider, "timings": explanation.timings, "baseline": explanation.baseline,
                   "maps": str(maps_path), "targets": targets}
        (args.out / f"{stem}.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary, indent=2))


def _consistency(args: argparse.Namespace) -> None:
    import itertools

    import numpy as np
    from google.protobuf import json_format
    from onnxplain_client import from_tensor

    from service import render

    shared = _parse_params(args.param)
    grid = {}
    for item in args.grid:
        key, _, raw = item.partition("=")
        grid[key] = [_json_or_text(v) for v in raw.split(",") if v]
    baselines = args.baseline or ["black", "dataset_mean", "blur"]
    settings = []
    for baseline in baselines:
        for values in itertools.product(*grid.values()):
            varied = dict(zip(grid, values))
            label = " ".join([baseline, *(f"{k}={v}" for k, v in varied.items())])
            settings.append({"method": args.method, "params": {**shared, **varied}, "baseline": _baseline(baseline),
                             "label": label})
    metric_baselines = [_baseline(b) for b in (args.metric_baseline or ["black", "dataset_mean", "blur"])]
    with _connect(args, args.model) as (client, name), _progress_bar("consistency") as on_progress:
        result = client.consistency(name, args.image.read_bytes(), settings, metric=(args.metric, {}),
                                    metric_baselines=metric_baselines, class_index=args.class_index, seed=args.seed,
                                    top_fraction=args.top_fraction, probabilities=args.probabilities,
                                    return_maps=True, on_progress=on_progress)
    size = len(result.settings)
    spearman = np.array(result.spearman.values).reshape(size, size)
    args.out.mkdir(parents=True, exist_ok=True)
    figure = render.consistency_figure(list(result.settings), [from_tensor(m) for m in result.maps], spearman,
                                       args.out / f"{args.image.stem}.consistency.png")
    summary = json_format.MessageToDict(result, preserving_proto_field_name=True)
    summary.pop("maps", None)
    (args.out / f"{args.image.stem}.consistency.json").write_text(json.dumps(summary, indent=2))
    off_diagonal = spearman[~np.eye(size, dtype=bool)]
    print(f"{size} settings of {args.method} on {result.label} (class {result.class_index}); "
          f"{result.forward_passes} forward passes")
    print(f"Spearman between maps: mean {off_diagonal.mean():.3f}, min {off_diagonal.min():.3f}")
    for ranking in result.rankings:
        order = ", ".join(result.settings[i] for i in np.argsort(ranking.ranks))
        print(f"{result.metric} under {ranking.baseline} baseline ranks: {order}")
    tau = np.array(result.kendall_tau.values).reshape(len(result.rankings), -1)
    if len(tau) > 1:
        print(f"Kendall tau between those rankings: mean {tau[~np.eye(len(tau), dtype=bool)].mean():.3f}")
    print(f"figure: {figure}")
    if args.json:
        print(json.dumps(summary, indent=2))


@contextlib.contextmanager
def _progress_bar(description: str):
    from tqdm import tqdm

    with tqdm(desc=description, unit="pass", file=sys.stderr, leave=False, disable=None) as bar:
        def on_progress(progress) -> None:
            bar.total = progress.total
            bar.update(progress.done - bar.n)

        yield on_progress


def _parse_params(items: list[str]) -> dict[str, Any]:
    params = {}
    for item in items:
        key, _, raw = item.partition("=")
        if not raw:
            raise SystemExit(f"error: --param {item!r}: write NAME=VALUE")
        params[key] = _json_or_text(raw)
    return params


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _baseline(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        return {"kind": "KIND_CONSTANT", "value": float(text)}
    except ValueError:
        return {"kind": f"KIND_{text.upper()}"}


def _health(args: argparse.Namespace) -> int:
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


def _demo(args: argparse.Namespace) -> None:
    from service.demo import run_demo

    run_demo(args.models_dir, args.out)


if __name__ == "__main__":
    sys.exit(main())

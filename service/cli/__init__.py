"""onnxplain: serve, list models, predict, explain, the studies, audits, and the demo.

The commands that take a MODEL talk to --server when given; otherwise MODEL is a local .onnx file (or model
directory) and an in-process server on a free port serves it for the duration of the command.

Errors are one line on stderr, "error: ...": exit 2 for a command line the command cannot run, exit 1 for a
refusal of the server. Long commands draw a progress bar on stderr when it is a terminal
(ONNXPLAIN_PROGRESS=always|never|auto).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from service import __version__, logs
from service.cli import audit as audit_command
from service.cli import basic, behaviour, studies
from service.cli import inspect as inspect_command
from service.cli import explain as explain_command
from service.cli import ui as ui_command
from service.cli.common import CommandError, client_options, enum_choices
from service.cli.overrides import refusal_line, set_option


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(args.log_level)
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        return 130
    except CommandError as error:
        print(error.line(), file=sys.stderr)
        return 2
    except Exception as error:  # an expected refusal is one line, not a traceback
        line = refusal_line(error)
        if line is None:
            raise  # a bug: its traceback is what a report needs
        print(line, file=sys.stderr)
        return 1


class _Parser(argparse.ArgumentParser):
    """argparse's refusals in the commands' one-line form (argparse prints the usage and the error on two)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="onnxplain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"onnxplain {__version__}")
    parser.add_argument("--log-level", type=str.upper, default=os.environ.get("ONNXPLAIN_LOG_LEVEL", "WARNING"),
                        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                        help="default WARNING (env ONNXPLAIN_LOG_LEVEL)")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--models-dir", type=Path, help="model repository (env ONNXPLAIN_MODELS_DIR)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1; 0.0.0.0 in Docker)")
    serve.add_argument("--port", type=int, help="port (default 50051)")
    serve.add_argument("--token-file", type=Path, help="require this bearer token (env ONNXPLAIN_TOKEN[_FILE])")
    serve.add_argument("--tls-cert", type=Path)
    serve.add_argument("--tls-key", type=Path)
    serve.add_argument("--device", choices=["auto", "cpu", "cuda"])
    serve.add_argument("--workers", type=int, help="jobs run at once (env ONNXPLAIN_WORKERS, default 2)")
    serve.add_argument("--interactive-workers", type=int,
                       help="threads for Predict and the model RPCs, which never wait behind jobs "
                            "(env ONNXPLAIN_INTERACTIVE_WORKERS, default 2)")
    serve.add_argument("--batch-size", type=int)
    serve.add_argument("--max-message-mb", type=int)
    serve.add_argument("--metrics-port", type=int, help="Prometheus metrics on this port (env ONNXPLAIN_METRICS_PORT)")
    serve.add_argument("--shutdown-grace", type=float, help="seconds running jobs get on SIGTERM (default 10)")
    serve.set_defaults(run=basic.serve)

    models = commands.add_parser("models", help="list the models a server holds")
    client_options(models)
    models.add_argument("--models-dir", type=Path, help="without --server: list this repository's models")
    models.add_argument("--json", action="store_true")
    models.set_defaults(run=basic.models)

    predict = commands.add_parser("predict", help="top classes of images")
    client_options(predict)
    predict.add_argument("model", help="model name on --server, else a local .onnx file or model directory")
    predict.add_argument("images", nargs="+", type=Path)
    predict.add_argument("--top-k", type=int, default=5)
    predict.add_argument("--probabilities", action="store_true", help="report probabilities, not raw outputs")
    predict.add_argument("--json", action="store_true")
    set_option(predict)
    predict.set_defaults(run=basic.predict)

    explain = commands.add_parser("explain", help="explain one image; writes .npy maps and overlay PNGs")
    client_options(explain)
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
    explain.add_argument("--probabilities", action="store_true", help="explain probabilities, not logits (the default)")
    explain.add_argument("--batch-size", type=int, default=0)
    explain.add_argument("--out", type=Path, default=Path("out"))
    explain.add_argument("--json", action="store_true", help="also write and print the result as JSON")
    set_option(explain)
    explain.set_defaults(run=explain_command.explain)

    consistency = commands.add_parser(
        "consistency", help="how much maps change with the baseline and parameters, and how rankings of the "
                            "settings change with the metric's baseline (Brunke et al. 2020)")
    client_options(consistency)
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
    set_option(consistency)
    consistency.set_defaults(run=studies.consistency)

    scales = commands.add_parser(
        "scales", help="WCAM on an image and on corrupted or zoomed versions: how the prediction and the "
                       "importance per scale shift")
    client_options(scales)
    scales.add_argument("model", help="model name on --server, else a local .onnx file or model directory")
    scales.add_argument("image", type=Path)
    scales.add_argument("--corruption", action="append", default=[],
                        choices=["gaussian_noise", "gaussian_blur", "jpeg", "contrast"])
    scales.add_argument("--severity", type=int, action="append", default=[], help="1-5 (default 1, 3, 5)")
    scales.add_argument("--zoom", type=float, action="append", default=[], help="zoom factor above 1")
    scales.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a WCAM parameter (e.g. -p num_designs=4)")
    scales.add_argument("--class", dest="class_index", type=int)
    scales.add_argument("--seed", type=int)
    scales.add_argument("--probabilities", action="store_true")
    scales.add_argument("--out", type=Path, default=Path("out"))
    scales.add_argument("--json", action="store_true", help="also print the result as JSON")
    set_option(scales)
    scales.set_defaults(run=studies.scales)

    measure = commands.add_parser(
        "measure", help="the five salience measures of a method's maps over images (Crum et al. 2023)")
    client_options(measure)
    measure.add_argument("model", help="model name on --server, else a local .onnx file or model directory")
    measure.add_argument("images", type=Path, nargs="+")
    measure.add_argument("--method", default="occlusion")
    measure.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    measure.add_argument("--measure", action="append", default=[],
                         choices=enum_choices("SalienceMeasure"),
                         help="repeatable; default all (stability with --stability-model)")
    measure.add_argument("--stability-model", action="append", default=[],
                         help="another model of the same task (repeatable): a name on --server, else a model "
                              "directory beside MODEL")
    measure.add_argument("--seed", type=int)
    measure.add_argument("--probabilities", action="store_true")
    measure.add_argument("--out", type=Path, default=Path("out"))
    set_option(measure)
    measure.set_defaults(run=behaviour.measure)

    aggregate = commands.add_parser(
        "aggregate", help="combine several methods' maps and score the ensemble against its members "
                          "(Mahlau & Nolde 2022)")
    client_options(aggregate)
    aggregate.add_argument("model", help="model name on --server, else a local .onnx file or model directory")
    aggregate.add_argument("images", type=Path, nargs="+")
    aggregate.add_argument("--method", action="append", required=True, metavar="NAME[:K=V,K=V]",
                           help="a member method and its parameters (repeatable)")
    aggregate.add_argument("--normalisation", default="max_abs",
                           choices=enum_choices("Normalisation"))
    aggregate.add_argument("--aggregator", default="mean",
                           choices=enum_choices("Aggregator"))
    aggregate.add_argument("--kappa", type=float)
    aggregate.add_argument("--absolute", action="store_true", help="take |a| before normalising")
    aggregate.add_argument("--metric", default="deletion")
    aggregate.add_argument("--search", action="store_true", help="score every combination and keep the best")
    aggregate.add_argument("--validation-fraction", type=float,
                           help="also choose on some images and score on the others: the share held out per "
                                "random split, in (0, 1)")
    aggregate.add_argument("--splits", type=int, default=0, help="random splits with --validation-fraction "
                                                                 "(default 10)")
    aggregate.add_argument("--split-seed", type=int)
    aggregate.add_argument("--seed", type=int)
    aggregate.add_argument("--probabilities", action="store_true")
    aggregate.add_argument("--out", type=Path, default=Path("out"))
    set_option(aggregate)
    aggregate.set_defaults(run=behaviour.aggregate)

    audit = commands.add_parser(
        "audit", help="explain and score a whole dataset with one or more models, in-process; rerun the same "
                      "command to resume a killed audit")
    audit.add_argument("dataset", type=Path, help="a folder of images, or a manifest (.csv or .jsonl: path, label, "
                                                  "mask)")
    audit.add_argument("--model", type=Path, action="append", required=True,
                       help="a .onnx file or a model directory (repeatable)")
    audit.add_argument("--method", action="append", default=[], metavar="NAME[:K=V,K=V]",
                       help="repeatable; default occlusion")
    audit.add_argument("--metric", action="append", default=[], metavar="NAME[:K=V,K=V]",
                       help="repeatable, e.g. deletion, insertion, localisation (with masks)")
    audit.add_argument("--measure", action="append", default=[],
                       choices=["entropy", "out_of_set", "transforms", "degradation"],
                       help="a per-image salience measure (repeatable); stability across the --model's is computed "
                            "whenever there are several")
    audit.add_argument("--ensemble", metavar="NORMALISATION/AGGREGATOR[/KAPPA]",
                       help="also aggregate each image's maps of the --method's (e.g. rank/mean, max_abs/ucb/1) and "
                            "score the ensemble like them")
    audit.add_argument("--corruption", action="append", default=[],
                       choices=["gaussian_noise", "gaussian_blur", "jpeg", "contrast"],
                       help="also WCAM each image clean and corrupted (repeatable): prediction flips, scale shifts")
    audit.add_argument("--severity", type=int, action="append", default=[], help="1-5 (default 3)")
    audit.add_argument("--zoom", type=float, action="append", default=[], help="also WCAM zoomed versions (above 1)")
    audit.add_argument("--scale-designs", type=int, default=2, help="WCAM designs for the scale analyses")
    audit.add_argument("--seed", type=int, default=0)
    audit.add_argument("--engine", choices=["embedded", "ray"], default="embedded",
                       help="embedded (in-process, the default) or ray (actors with their own sessions)")
    audit.add_argument("--address", help="Ray cluster address (with --engine ray); default: a local cluster")
    audit.add_argument("--workers", type=int, default=2, help="Ray actors (with --engine ray)")
    audit.add_argument("--out", type=Path, default=Path("out/audit"))
    set_option(audit)
    audit.set_defaults(run=audit_command.audit)

    inspect_command.register(commands)

    check = commands.add_parser("health", help="exit 0 when a server answers SERVING (Docker's health check)")
    check.add_argument("--server", default=None, help="host:port; default localhost and ONNXPLAIN_PORT")
    check.add_argument("--timeout", type=float, default=3.0)
    check.set_defaults(run=basic.health)

    demo = commands.add_parser("demo", help="every method side by side on the bundled samples; writes out/demo/")
    demo.add_argument("--models-dir", type=Path, default=None)
    demo.add_argument("--samples-per-model", type=int, default=2, metavar="N", help="samples of each model (default 2)")
    demo.add_argument("--methods", help="comma-separated, e.g. occlusion,wcam (default: all; EVA where installed)")
    demo.add_argument("--models", help="comma-separated model names (default: every model that ships samples)")
    demo.add_argument("--out", type=Path, default=Path("out/demo"))
    demo.set_defaults(run=basic.demo)

    ui_command.register(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())

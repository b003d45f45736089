"""``onnxplain ui``: the interactive page (service/ui) on uvicorn, over a running server or an in-process one."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from service.cli.common import client_options, connect, fail


def register(commands) -> None:
    ui = commands.add_parser("ui", help="a web page to pick a model, drop an image and compare methods' maps and "
                                        "scores")
    client_options(ui)
    ui.add_argument("--host", default="127.0.0.1", help="address the page listens on (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=8080, help="port of the page (default 8080; 0: a free one)")
    ui.add_argument("--models-dir", type=Path, help="without --server: the repository the in-process server "
                                                    "loads (default the bundled models)")
    ui.set_defaults(run=serve_page)


def serve_page(args: argparse.Namespace) -> int:
    import uvicorn

    from service.ui import create_app

    if not 0 <= args.port <= 65535:
        fail(f"{args.port}: a port from 0 to 65535", "--port")
    if args.server and args.models_dir:
        fail("a running server keeps its own models; give --server or --models-dir, not both", "--models-dir")
    if args.models_dir and not args.models_dir.is_dir():
        fail(f"{args.models_dir} is not a folder", "--models-dir")
    listener = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((args.host, args.port))
        listener.listen(128)  # connections wait in the backlog from the moment the URL is printed
    except OSError as error:
        listener.close()
        fail(f"cannot listen on {args.host}:{args.port} ({error.strerror or error})", "--port")
    with listener, connect(args) as (client, _):
        port = listener.getsockname()[1]
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"onnxplain ui: http://{host}:{port}/ (Ctrl-C stops it)", file=sys.stdout, flush=True)
        server = uvicorn.Server(uvicorn.Config(create_app(client), log_level="warning", lifespan="off"))
        server.run(sockets=[listener])
    return 0

"""Fuzz the xai.v1 server: N seeded hostile requests, then the status histogram and every failure grouped by cause.

    python bench/fuzz.py                          # 10,000 requests, seed 1010, an embedded server on models/
    python bench/fuzz.py --requests 2000 --seed 7
    python bench/fuzz.py --index 1234 -v          # replay one case (what tests/test_fuzz.py names on failure)
    python bench/fuzz.py --address host:50051     # a running server (it needs models/ and, for Audit, the
                                                  # dataset that tests/fuzzing.write_dataset writes)

The cases come from tests/fuzzing.py; see there for what is mutated and what is asserted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--start", type=int, default=0, help="first case index")
    parser.add_argument("--index", type=int, default=None, help="replay this one case")
    parser.add_argument("--address", default=None, help="a running server instead of an embedded one")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each case and its status")
    args = parser.parse_args()

    import grpc
    import fuzzing

    seed = fuzzing.SEED if args.seed is None else args.seed
    assets = fuzzing.Assets()
    with ExitStack() as stack:
        address, in_flight = args.address, None
        if address is None:
            from service.api.server import EmbeddedServer
            from service.config import Settings

            logging.basicConfig(level=logging.ERROR if args.verbose else logging.CRITICAL)
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            fuzzing.write_dataset(data_dir)
            embedded = EmbeddedServer(Settings(models_dir=ROOT / "models", data_dir=data_dir))
            address = stack.enter_context(embedded)
            in_flight = lambda: embedded.server.runner.in_flight  # noqa: E731
        channel = stack.enter_context(grpc.insecure_channel(address, options=[
            ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]))
        fuzzing.warm_up(channel, assets)
        if args.index is not None:
            case = fuzzing.case(seed, args.index, assets)
            with fuzzing.ServerErrors() as errors:
                errors.index = args.index
                result = fuzzing.run_case(channel, case, in_flight=in_flight)
            print(case.describe())
            if args.verbose:
                print(case.request())
            print(f"-> {result.code.name} in {result.seconds * 1000:.0f} ms: {result.details}")
            if args.index in errors.raised:
                print(f"raised {errors.raised[args.index]}")
            print(f"violation: {result.violation()}")
            return 1 if result.violation() else 0

        def progress(done: int) -> None:
            print(f"\r{done}/{args.requests}", end="", file=sys.stderr, flush=True)

        run = fuzzing.fuzz(channel, seed, args.requests, assets, start=args.start, in_flight=in_flight,
                           on_progress=progress)
        print(file=sys.stderr)
        if args.verbose:
            for result in run.results:
                print(f"{result.code.name:<20} {result.seconds * 1000:7.0f} ms  {result.case.describe()}")
        print(run.report(limit=200))
        slowest = sorted(run.results, key=lambda r: -r.seconds)[:10]
        print("slowest:\n" + "\n".join(f"  {r.seconds:.2f} s {r.code.name} {r.case.describe()}" for r in slowest))
        return 1 if run.failures() or run.health else 0


if __name__ == "__main__":
    sys.exit(main())

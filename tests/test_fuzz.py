"""Hostile clients: thousands of seeded, fuzzed requests over every xai.v1 RPC (and health and reflection) get a
precise status each, while health answers SERVING throughout, work stops at deadlines and memory stays flat.

What each request must get (tests/fuzzing.py has the cases):
- never INTERNAL, UNKNOWN, UNAVAILABLE or DATA_LOSS;
- an undecodable body: INVALID_ARGUMENT. grpcio's asyncio server answers a body its deserializer cannot parse with
  UNKNOWN by itself, but a server can register a deserializer that never raises (an interceptor can swap it into
  every ``RpcMethodHandler``) and answer INVALID_ARGUMENT from the handler, so UNKNOWN is not accepted;
- an unchanged base request: its usual answer (OK; NOT_FOUND for UnloadModel of a model never loaded);
- each named attack (issue 10's findings): its status (INVALID_ARGUMENT or RESOURCE_EXHAUSTED, with the field named
  in a google.rpc.BadRequest), or any refusal for uploads that read files and audits through planted links;
- after a deadline: no job of the server still running 1.5 s later.

2,000 requests by default (under a minute on 2 cores once the server holds); ``ONNXPLAIN_FUZZ_REQUESTS=10000`` for
more. A failure names each case as ``seed=... index=... rpc=... mutations=[...]`` with where the server raised;
``python bench/fuzz.py --index N -v`` replays one.
"""

from __future__ import annotations

import os
import sys
from collections import Counter

import grpc
import pytest
from conftest import MODELS

import fuzzing

REQUESTS = int(os.environ.get("ONNXPLAIN_FUZZ_REQUESTS") or 2000)
# RSS of this process (it hosts the server) may grow this much from the end of the first 10% of the requests to
# the end. Measured before issue 10's fixes: +107 MiB over 2,000 requests and +261 MiB over 10,000, most of it
# uploads that failed but stayed registered; valid requests alone stay within 5 MiB over 900 of each RPC.
RSS_GROWTH_MB = 100
# json and the other C parsers recurse on the C stack: each level takes about 130 bytes of a thread's 8 MiB (measured:
# a worker thread overflowed at 65,000 levels), so a limit of 10,000 is safe and 1,000,000 is not.
MAX_RECURSION_LIMIT = 10_000


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory):
    from service.api.server import EmbeddedServer
    from service.config import Settings

    data_dir = tmp_path_factory.mktemp("fuzz_data")
    fuzzing.write_dataset(data_dir)
    embedded = EmbeddedServer(Settings(models_dir=MODELS, data_dir=data_dir))
    with embedded:
        yield embedded


@pytest.fixture(scope="module")
def assets():
    return fuzzing.Assets()


def test_hostile_requests_get_precise_statuses_with_health_and_memory_flat(fuzzed_server, assets):
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    with grpc.insecure_channel(fuzzed_server.address, options=options) as channel:
        fuzzing.warm_up(channel, assets)
        # Deeper recursion than a thread's C stack holds turns nested input (JSON in an upload's metadata) into a
        # SIGSEGV of the whole process instead of a RecursionError: checked first, as the run would die of it.
        assert sys.getrecursionlimit() <= MAX_RECURSION_LIMIT, (
            f"the recursion limit is {sys.getrecursionlimit()} once the server has run every RPC (auto_LiRPA sets "
            "1000000 when imported); a 200 KB upload whose metadata nests JSON 100,000 deep then crashes the process")
        run = fuzzing.fuzz(channel, fuzzing.SEED, REQUESTS, assets,
                           in_flight=lambda: fuzzed_server.server.runner.in_flight)
        # The second half twice more: a leak keeps what it kept, and raises the floor of RSS from one replay to
        # the next; the first pass and the first replay have warmed the rest (caches, arenas, the allocator's
        # pages; RSS swings by about 250 MiB with the large jobs in flight, so one sample says little).
        replays = [fuzzing.fuzz(channel, fuzzing.SEED, REQUESTS - REQUESTS // 2, assets, start=REQUESTS // 2,
                                in_flight=lambda: fuzzed_server.server.runner.in_flight) for _ in range(2)]
        final_health = fuzzing.health_status(channel)
    start, end = replays[0].floor(), replays[1].floor()
    report = run.report(limit=100)
    print("\n" + report)
    print(f"RSS floor {run.floor(0.5):.0f} MiB over the second half, then {start:.0f} and {end:.0f} MiB over two "
          f"replays of it ({end - start:+.0f})")
    failures = run.failures() + sum((r.failures() for r in replays), [])
    problems = [f"{len(failures)} requests failed"] if failures else []
    unhealthy = run.health + sum((r.health for r in replays), [])
    problems += [f"health not SERVING {unhealthy}"] if unhealthy else []
    problems += [f"health at the end: {final_health}"] if final_health != "SERVING" else []
    problems += [f"RSS grew {end - start:.0f} MiB from one replay to the next (bound {RSS_GROWTH_MB})"] \
        if end - start >= RSS_GROWTH_MB else []
    assert not problems, f"{'; '.join(problems)}\n{report}"


def test_a_case_is_rebuilt_from_its_seed_and_index_alone(assets):
    again = fuzzing.Assets()
    for index in (0, 1, 17, 999, 123_456):
        one, other = fuzzing.case(fuzzing.SEED, index, assets), fuzzing.case(fuzzing.SEED, index, again)
        assert (one.rpc, one.body, one.mutations) == (other.rpc, other.body, other.mutations)
    drawn = len(fuzzing.ATTACKS) + 5  # past the named attacks every run opens with
    bodies = {fuzzing.case(seed, drawn, assets).body for seed in range(20)}
    assert len(bodies) > 10  # the seed matters


def test_the_cases_reach_every_rpc_and_every_attack(assets):
    """What the default run sends: every RPC, every named attack (issue 10's findings), and each kind of hostile
    value many times over."""
    cases = [fuzzing.case(fuzzing.SEED, index, assets) for index in range(2000)]
    per_rpc = Counter(c.rpc.name for c in cases)
    assert set(per_rpc) == {rpc.name for rpc in fuzzing.RPCS} and min(per_rpc.values()) >= 20, per_rpc
    sent = Counter(m for c in cases for m in c.mutations)
    missing = [a.name for a in fuzzing.ATTACKS if not sent[f"attack: {a.name}"]]
    assert not missing, f"named attacks never sent in 2,000 cases: {missing}"
    mutations = [m for c in cases for m in c.mutations if not m.startswith("attack: ")]

    def count(predicate) -> int:
        return sum(1 for m in mutations if predicate(m))

    unknown_enums = {str(v) for v in fuzzing.UNKNOWN_ENUMS}
    kinds = {
        "unknown enum inside method parameters": count(
            lambda m: m.rsplit("=", 1)[1] in unknown_enums and any(
                f".{k}=" in m for k in ("perturbation", "segmentation", "sampler", "rescale", "bound_method"))),
        "unknown enum inside metric parameters": count(lambda m: ".correlation=" in m and m.rsplit("=", 1)[1] in
                                                       unknown_enums),
        "NUL byte in a string": count(lambda m: "\\x00" in m),
        "300-character string": count(lambda m: "'xxxxxxxxxx" in m),
        "path escape": count(lambda m: "'../../etc/passwd'" in m or "'/etc/passwd'" in m),
        "NaN or infinity": count(lambda m: m.endswith(("=nan", "=inf", "=-inf"))),
        "huge integer": count(lambda m: m.endswith(("=4294967295", "=9223372036854775807", "=18446744073709551615"))),
        "negative integer": count(lambda m: m.endswith(("=-1", "=-2147483648", "=-9223372036854775808"))),
        "huge repeated field": count(lambda m: "+=300 copies" in m or "+=1000 x" in m),
        "emptied repeated field": count(lambda m: m.endswith("=[]")),
        "tensor of an impossible shape": count(lambda m: "[2**" in m or "[0, 0, 3]" in m or "<[0, 5]" in m),
        "raw bytes not matching the shape": count(lambda m: "byte short" in m or "byte over" in m or
                                                  "raw_data=<" in m),
        "corrupted PNG": count(lambda m: "CRC" in m or "bits flipped" in m or "not a chunk" in m),
        "truncated PNG": count(lambda m: "PNG truncated" in m or "truncated half" in m),
        "junk or broken ONNX upload": count(lambda m: m.startswith("onnx_model=<ONNX:")),
    }
    rare = {name: n for name, n in kinds.items() if n < 5}
    assert not rare, f"hostile values sent fewer than 5 times in 2,000 cases: {rare}"
    undecodable = sum(c.expect == grpc.StatusCode.INVALID_ARGUMENT and c.mutations[0].startswith("body=")
                      for c in cases)
    valid = sum(not c.mutations for c in cases)
    assert undecodable >= 50 and valid >= 50, (undecodable, valid)


def test_every_rpc_of_the_api_is_fuzzed():
    from onnxplain_client._proto.xai.v1 import explain_service_pb2, model_service_pb2

    served = {method.name for module in (explain_service_pb2, model_service_pb2)
              for service in module.DESCRIPTOR.services_by_name.values() for method in service.methods}
    assert served - {rpc.name for rpc in fuzzing.RPCS} == set()

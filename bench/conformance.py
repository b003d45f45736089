"""The conformance matrix of issue 11 outside pytest: every real ONNX classifier, end to end, as a Markdown table.

    python bench/conformance.py                  # every case (a few minutes on 2 cores)
    python bench/conformance.py resnet18 vit_reduced --eva-timeout 60

Per case (tests/conformance_models.py builds them; tests/test_conformance.py asserts the same outcomes): does
it load, the largest |server - exporter's reference| over 3 images, how many black-box methods give a finite,
non-zero map, EVA's mode (verified, hybrid at a cut, or refused with the server's reason), the wall time of EVA
on an 8 x 8 grid at its default bound method (CROWN-IBP) and a fixed epsilon of 1/255, and the output kind the
server detected (with how it decided it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "clients" / "python"))
sys.path.insert(0, str(ROOT))

EVA_8X8 = {"grid_size": 8, "epsilon": 1 / 255}  # default bound method (crown_ibp), no calibration search


def row(client, models, name: str, eva_timeout: float) -> list[str]:
    from conformance_models import BLACK_BOX_PARAMS, eva_mode, explain_map, load_case, predict_error, sample_images

    case = models.get(name)
    _, loaded = load_case(client, case)
    if not loaded.ok:
        refused = f"no: {loaded.code}: {loaded.message}"
        return [name, case.source, refused, "-", "-", "-", "-", "-"]
    images = sample_images(case.height, case.width)
    error, within, predicted, _ = predict_error(client, case, images)
    tolerance = case.tolerance
    prediction = (f"{error:.1e} ({'within' if within else 'OUTSIDE'} rtol {tolerance.rtol:g} / "
                  f"atol {tolerance.atol:g} x scale)" if predicted.ok else f"{predicted.code}: {predicted.message}")
    failures = []
    for method in BLACK_BOX_PARAMS:
        attribution, outcome = explain_map(client, case, images[0], method)
        if not outcome.ok:
            failures.append(f"{method} {outcome.code}: {outcome.message}")
        elif not (np.isfinite(attribution).all() and np.any(attribution != 0)):
            failures.append(f"{method}: {'non-finite' if not np.isfinite(attribution).all() else 'all-zero'} map")
    methods = f"{len(BLACK_BOX_PARAMS) - len(failures)}/{len(BLACK_BOX_PARAMS)}"
    if failures:
        methods += " (" + "; ".join(failures) + ")"
    mode = eva_mode(client, case, images[0])
    if mode.kind == "refused":
        eva_time = "-"
    else:
        eva_time = _timed_eva(client, case, images[0], EVA_8X8, eva_timeout)
        if not eva_time.endswith(" s"):  # CROWN-IBP refused or out of time: how long IBP takes, for comparison
            eva_time += "; IBP: " + _timed_eva(client, case, images[0], {**EVA_8X8, "bound_method": "ibp"},
                                               eva_timeout)
    described = client.get_model(name)
    output_kind = (f"{_output_kind_name(described.output_kind)} ({described.output_kind_source}), "
                   f"output {list(described.output.shape)}")
    client.unload_model(name)
    source = f"{case.source} ({case.notes})" if case.notes else case.source
    return [name, source, "yes", prediction, methods, str(mode), eva_time, output_kind]


def _timed_eva(client, case, image, params, timeout: float) -> str:
    from conformance_models import eva_mode

    start = time.perf_counter()
    timed = eva_mode(client, case, image, params, timeout=timeout)
    elapsed = time.perf_counter() - start
    if timed.code == "DEADLINE_EXCEEDED":
        return f"> {timeout:g} s"
    return f"{timed}, {elapsed:.1f} s" if timed.kind != "refused" else f"{timed.code}: {timed.detail}"


def _output_kind_name(value: int) -> str:
    from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms

    return ms.OutputKind.Name(value).removeprefix("OUTPUT_KIND_").lower()


def main() -> None:
    from conformance_models import CASES, ConformanceModels, conformance_server
    from onnxplain_client import OnnxplainClient

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", help=f"cases to run (default all): {', '.join(CASES)}")
    parser.add_argument("--eva-timeout", type=float, default=120.0, help="seconds for the 8 x 8 EVA run per case")
    args = parser.parse_args()
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {', '.join(CASES)}")
    header = ["case", "source / configuration", "loads", "predict max error", "black-box methods ok",
              "EVA (2x2, IBP, eps 1/255)", "EVA 8x8 (CROWN-IBP): mode, time",
              "output kind (how detected), output shape"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header), flush=True)
    with tempfile.TemporaryDirectory(prefix="conformance-") as directory:
        models = ConformanceModels(Path(directory))
        server = conformance_server(Path(directory))
        with server, OnnxplainClient(server.address) as client:
            for name in args.cases or CASES:
                cells = row(client, models, name, args.eva_timeout)
                print("| " + " | ".join(cell.replace("|", "/").replace("\n", " ") for cell in cells) + " |",
                      flush=True)


if __name__ == "__main__":
    main()

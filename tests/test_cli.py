"""The command line, embedded (no --server) and against a server (the demo: test_demo_page.py)."""

from __future__ import annotations

import json

import numpy as np
from conftest import MODELS, load_samples

from service.cli import main


def test_predict_embedded(capsys):
    sample = load_samples("digits")[0]
    assert main(["predict", str(MODELS / "digits" / "model.onnx"), str(sample["path"]), "--top-k", "2",
                 "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["top"][0]["class_index"] == sample["label"]


def test_explain_embedded_writes_maps_overlays_and_json(tmp_path, capsys, client):
    sample = load_samples("shapes")[0]
    code = main(["explain", str(MODELS / "shapes"), str(sample["path"]), "-p", "window=8", "-p", "stride=[4,4]",
                 "--top-k", "2", "--seed", "5", "--out", str(tmp_path), "--json"])
    assert code == 0
    summary = json.loads((tmp_path / "sample_00.occlusion.json").read_text())
    maps = np.load(summary["maps"])
    assert maps.shape == (2, 64, 64) and summary["seed"] == 5
    for target in summary["targets"]:
        assert (tmp_path / f"sample_00.occlusion.{target['class_index']}.png").is_file()
    # The same explanation as the server gives through the client.
    reference = client.explain("shapes", sample["path"], "occlusion", {"window": [8], "stride": [4]}, top_k=2)
    np.testing.assert_allclose(maps[0], reference.map, atol=1e-6)
    printed = capsys.readouterr()
    assert json.loads(printed.out) == summary  # stdout is the JSON alone; the lines for people go to stderr
    assert "forward passes" in printed.err


def test_commands_against_a_server(server, capsys):
    assert main(["models", "--server", server.address]) == 0
    assert "shapes" in capsys.readouterr().out
    assert main(["health", "--server", server.address]) == 0
    assert capsys.readouterr().out.strip() == "SERVING"


def test_grpc_errors_become_one_line(server, capsys):
    sample = load_samples("shapes")[0]
    assert main(["explain", "missing-model", str(sample["path"]), "--server", server.address]) == 1
    assert capsys.readouterr().err.startswith("error: NOT_FOUND: model_name: no model named 'missing-model'")


def test_consistency_command_writes_a_figure_and_json(tmp_path, capsys):
    sample = load_samples("shapes")[2]
    code = main(["consistency", str(MODELS / "shapes"), str(sample["path"]), "-p", "window=8", "--grid",
                 "stride=4,8", "--baseline", "black", "--baseline", "image_mean", "--seed", "0", "--out",
                 str(tmp_path)])
    assert code == 0
    summary = json.loads((tmp_path / "sample_02.consistency.json").read_text())
    assert summary["settings"] == ["black stride=4", "black stride=8", "image_mean stride=4", "image_mean stride=8"]
    assert len(summary["rankings"]) == 3 and (tmp_path / "sample_02.consistency.png").stat().st_size > 10_000
    assert "Spearman between maps" in capsys.readouterr().out


def test_measure_and_aggregate_commands_write_figures_and_json(tmp_path, capsys):
    paths = [str(s["path"]) for s in load_samples("shapes")[:2]]
    assert main(["measure", str(MODELS / "shapes"), *paths, "-p", "window=8", "-p", "stride=4", "--measure", "entropy",
                 "--measure", "stability", "--stability-model", str(MODELS / "shapes_run1"), "--seed", "0",
                 "--out", str(tmp_path)]) == 0
    measured = json.loads((tmp_path / "shapes.occlusion.measures.json").read_text())
    assert [s["name"] for s in measured["entropy"]] == ["histogram", "spatial"]
    assert measured["stability_models"] == ["shapes", "shapes_run1"] and len(measured["stability"][0]["values"]) == 2
    assert (tmp_path / "shapes.occlusion.measures.png").stat().st_size > 10_000
    assert main(["aggregate", str(MODELS / "shapes"), paths[0], "--method", "occlusion:window=8,stride=4",
                 "--method", "rise:num_masks=300", "--aggregator", "ucb", "--kappa", "0.5", "--seed", "0",
                 "--out", str(tmp_path)]) == 0
    aggregated = json.loads((tmp_path / "aggregate.json").read_text())
    assert aggregated["members"] == ["occlusion", "rise"] and aggregated["chosen"]["aggregator"] == "AGGREGATOR_UCB"
    assert (tmp_path / "sample_00.aggregate.png").stat().st_size > 5_000
    printed = capsys.readouterr().out
    assert "max_abs / ucb, kappa 0.5" in printed
    # RISE's map is randomized: its member line carries its reliability, occlusion's none.
    occlusion_entry, rise_entry = aggregated["member_precision"]
    assert occlusion_entry == {} and int(rise_entry["samples"]) <= 300 and "standard_error" not in rise_entry
    rise_line = next(line for line in printed.splitlines() if line.strip().startswith("rise "))
    assert rise_line.endswith(f"reliability {rise_entry['reliability']:.2f}")
    assert "reliability" not in next(line for line in printed.splitlines() if line.strip().startswith("occlusion "))

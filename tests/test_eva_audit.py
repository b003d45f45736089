"""EVA in audits: one radius for every image (EvaParams.epsilon 0 is 1/255), so the maps share a scale and the
summary's certified rate is a rate at a stated radius; calibrate_radius, one radius per image, is refused."""

from __future__ import annotations

import json
import shutil

import grpc
import pytest
from conftest import MODELS
from scenes import write_scene_dataset
from test_server import assert_status

from service.audit.engine import AuditPlan
from service.cli import main
from service.errors import InvalidArgument

EVA = {"bound_method": "BOUND_METHOD_CROWN_IBP", "grid_size": 2}  # 5 regions per image: cheap


def eva_rows(data_dir, name: str) -> list[dict]:
    import sqlite3

    with sqlite3.connect(data_dir / "audits" / name / "results.sqlite") as connection:
        return [json.loads(d) for (d,) in connection.execute("SELECT details FROM results ORDER BY item")]


def test_an_audits_eva_maps_share_the_default_radius_and_the_summary_gives_the_certified_rate(client, data_dir):
    """At 1/255 CROWN-IBP proves every bundled digit keeps its class, and no shapes scene (studies/eva.md: the
    certified radius of the shapes model is about 0.03/255 with CROWN-IBP, under 0.3/255 on every image; of the
    digits model above 1/255 on every image): the rate is about the radius stated with it, the same for all."""
    shutil.copytree(MODELS / "digits" / "samples", data_dir / "eva_digits")
    (data_dir / "eva_scenes").mkdir()
    write_scene_dataset(data_dir / "eva_scenes", 4, seed=31)
    expected = {("eva_digits/manifest.json", "digits"): 8, ("eva_scenes/manifest.csv", "shapes"): 0}
    for (dataset, model), certified in expected.items():
        result = client.audit(dataset, [model], f"eva-{model}", methods={"eva": EVA}, seed=0)
        group = json.loads(result.summary_json)["groups"][0]
        items = 8 if model == "digits" else 4
        assert group["certification"] == {"radius": pytest.approx(1 / 255), "certified": certified, "items": items,
                                          "rate": pytest.approx(certified / items)}
        rows = eva_rows(data_dir, f"eva-{model}")
        assert len(rows) == items and [row["epsilon"] for row in rows] == [pytest.approx(1 / 255)] * items
        # ball_certified is the verifier's bound of AO over the whole ball below 0, image by image.
        assert [row["ball_certified"] for row in rows] == [row["adversarial_overlap"] < 0 for row in rows]


def test_calibrate_radius_in_an_audit_is_invalid_argument_naming_the_field(client, data_dir, capsys):
    (data_dir / "eva_refused").mkdir(exist_ok=True)
    write_scene_dataset(data_dir / "eva_refused", 2, seed=32)
    assert_status(lambda: client.audit("eva_refused/manifest.csv", ["shapes"], "eva-refused",
                                       methods=[("occlusion", {}), ("eva", {**EVA, "calibrate_radius": True})]),
                  grpc.StatusCode.INVALID_ARGUMENT, "methods[1].eva.calibrate_radius", "calibrate_radius")
    with pytest.raises(InvalidArgument) as refused:
        AuditPlan.build([("eva", {"calibrate_radius": True})], [])
    assert refused.value.field == "methods[0].eva.calibrate_radius"
    AuditPlan.build([("eva", {"calibrate_radius": False, "epsilon": 2 / 255})], [])  # a stated radius is fine
    assert main(["audit", str(data_dir / "eva_refused"), "--model", str(MODELS / "shapes"), "--method",
                 "eva:calibrate_radius=true", "--out", str(data_dir / "eva_refused_out")]) == 1
    printed = capsys.readouterr().err.strip().splitlines()
    assert len(printed) == 1 and "calibrate_radius" in printed[0]


def test_certification_counts_whole_model_balls_only():
    """A hybrid ball's head is sampled, so its AO < 0 proves nothing: such results are not counted as uncertified
    images, and a group of only hybrid results has no certification at all."""
    from service.audit.summary import _certification

    def result(certified: bool, ball_certified: bool) -> dict:
        return {"details": {"certified": certified, "ball_certified": ball_certified, "epsilon": 1 / 255}}

    whole = [result(True, True), result(True, False), result(True, True)]
    hybrid = [result(False, False), result(False, False)]
    assert _certification(whole + hybrid) == {"radius": 1 / 255, "certified": 2, "items": 3, "rate": 2 / 3}
    assert _certification(hybrid) is None

"""Aggregate: members scored against their aggregate under one metric, the search's table, and refusals."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import references
from conftest import load_samples
from onnxplain_client import from_tensor
from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex
from test_server import assert_status, still_serving

METHODS = {"occlusion": {"window": 8, "stride": 4}, "rise": {"num_masks": 500}, "sobol": {"num_designs": 8}}


def test_one_member_aggregates_to_itself_and_scores_as_itself(client):
    sample = load_samples("shapes")[0]
    alone = client.explain("shapes", sample["path"], "occlusion", METHODS["occlusion"], seed=0)
    result = client.aggregate("shapes", sample["path"], maps=[alone.map], normalisation="max_abs", aggregator="ucb",
                              kappa=0.0, metric=("deletion", {"steps": 16}), seed=3)
    aggregate = from_tensor(result.aggregates[0])
    np.testing.assert_allclose(aggregate, alone.map / np.abs(alone.map).max(), rtol=1e-5, atol=1e-7)
    member = from_tensor(result.member_scores)
    assert member.shape == (1, 1) and result.aggregate_scores[0] == pytest.approx(member[0, 0])  # deletion: scale-free
    assert result.gain == pytest.approx(0.0, abs=1e-9) and result.members == ["map 0"]


def test_two_callers_maps_aggregate_to_their_values_by_hand(client):
    """Maps constant on four 32 x 32 quadrants, normalised and aggregated by hand on the 2 x 2 pattern:
    max_abs: (1, 2, 3, 4) / 4 and (-8, 4, 2, 0) / 8, whose mean is (-3/8, 1/2, 1/2, 1/2); min_max: (0, 1/3, 2/3, 1)
    and (0, 1, 10/12, 8/12), mean (0, 2/3, 3/4, 5/6) less their spread (0, 1/3, 1/12, 1/6) is (0, 1/3, 2/3, 2/3)."""
    sample = load_samples("shapes")[0]
    quadrants = lambda pattern: np.kron(np.array(pattern, np.float32), np.ones((32, 32), np.float32))
    maps = [quadrants([[1, 2], [3, 4]]), quadrants([[-8, 4], [2, 0]])]
    for normalisation, aggregator, expected in [("max_abs", "mean", [[-3 / 8, 1 / 2], [1 / 2, 1 / 2]]),
                                                ("min_max", "lcb", [[0, 1 / 3], [2 / 3, 2 / 3]])]:
        result = client.aggregate("shapes", sample["path"], maps=maps, normalisation=normalisation,
                                  aggregator=aggregator, kappa=1.0, metric=("deletion", {"steps": 8}), seed=0)
        np.testing.assert_allclose(from_tensor(result.aggregates[0]), quadrants(expected), atol=1e-6)


def test_the_search_scores_every_combination_and_keeps_the_best(client):
    samples = [s["path"] for s in load_samples("shapes")[:2]]
    events = []
    result = client.aggregate("shapes", samples, methods=METHODS, search=True, seed=0, on_progress=events.append,
                              metric=("deletion", {"steps": 16}), return_members=True)
    assert len(result.table) == 7 * (7 + 2 * 3) and events
    scores = np.array([row.score for row in result.table])
    assert result.higher_is_better is False and result.chosen.score == pytest.approx(scores.min())
    members = from_tensor(result.member_scores)
    assert members.shape == (2, 3) and result.members == list(METHODS)
    assert result.gain == pytest.approx(members.mean(axis=0).min() - result.chosen.score)
    assert np.mean(result.aggregate_scores) == pytest.approx(result.chosen.score)
    # The chosen aggregate is the chosen normalisation and aggregator, by their definitions, of the members returned.
    members_maps = from_tensor(result.member_maps)
    normalisation = ex.Normalisation.Name(result.chosen.normalisation).removeprefix("NORMALISATION_").lower()
    aggregator = ex.Aggregator.Name(result.chosen.aggregator).removeprefix("AGGREGATOR_").lower()
    for image, chosen in enumerate(result.aggregates):
        normalised = np.stack([references.normalised(m, normalisation) for m in members_maps[image]])
        expected = references.aggregated(normalised, aggregator, kappa=result.chosen.kappa)
        np.testing.assert_allclose(from_tensor(chosen), expected, rtol=1e-4, atol=1e-6)
    # Same seed, same table.
    again = client.aggregate("shapes", samples, methods=METHODS, search=True, seed=0,
                             metric=("deletion", {"steps": 16}))
    assert [row.score for row in again.table] == pytest.approx(list(scores))


def test_bad_aggregations_are_refused_with_the_field(client):
    sample = load_samples("shapes")[0]
    paths = [s["path"] for s in load_samples("shapes")[:2]]
    assert_status(lambda: client.aggregate("shapes", sample["path"]), grpc.StatusCode.INVALID_ARGUMENT, "methods")
    assert_status(lambda: client.aggregate("shapes", paths, maps=[np.zeros((64, 64))]),
                  grpc.StatusCode.INVALID_ARGUMENT, "maps")
    assert_status(lambda: client.aggregate("shapes", sample["path"], maps=[np.zeros((8, 8))]),
                  grpc.StatusCode.INVALID_ARGUMENT, "maps[0]")
    assert_status(lambda: client.aggregate("shapes", sample["path"], maps=[np.zeros((64, 64))],
                                           metric=("wavelet_deletion", None)),
                  grpc.StatusCode.INVALID_ARGUMENT, "metric")
    assert_status(lambda: client.aggregate("shapes", sample["path"], maps=[np.zeros((64, 64))], kappa=float("nan")),
                  grpc.StatusCode.INVALID_ARGUMENT, "kappa")
    assert_status(lambda: client.aggregate("shapes", sample["path"], methods={"occlusion": {}}, class_index=9),
                  grpc.StatusCode.INVALID_ARGUMENT, "class_index")
    still_serving(client)


def test_one_method_under_two_settings_makes_two_members(client):
    sample = load_samples("shapes")[1]
    result = client.aggregate("shapes", sample["path"], methods=[("occlusion", {"window": 8, "stride": 4}),
                                                                 ("occlusion", {"window": 16, "stride": 8})],
                              metric=("deletion", {"steps": 8}), seed=0)
    assert result.members == ["occlusion #1", "occlusion #2"]
    scores = from_tensor(result.member_scores)[0]
    assert scores[0] != scores[1]  # different windows, different maps


def test_a_validation_split_reuses_the_scores_and_reports_each_split(client):
    samples = [s["path"] for s in load_samples("shapes")[:4]]
    request = dict(methods=[("occlusion", {"window": 8, "stride": 4}), ("occlusion", {"window": 16, "stride": 8})],
                   search=True, kappas=[1.0], seed=0, metric=("deletion", {"steps": 8}))
    result = client.aggregate("shapes", samples, validation_fraction=0.5, num_splits=3, split_seed=7, **request)
    assert len(result.splits) == 3 and result.held_out_gain.splits == 3 and result.split_seed == 7
    members = from_tensor(result.member_scores)  # (images, members)
    for split in result.splits:
        assert len(split.held_out) == 2 and sorted([*split.selection, *split.held_out]) == [0, 1, 2, 3]
        np.testing.assert_allclose(split.member_held_out_scores, members[list(split.held_out)].mean(axis=0))
        np.testing.assert_allclose(split.member_selection_scores, members[list(split.selection)].mean(axis=0))
        # Two images a side: the sides' means make up the table's.
        np.testing.assert_allclose((np.array(split.selection_scores) + split.held_out_scores) / 2,
                                   [row.score for row in result.table], rtol=1e-9)
    gains = [split.held_out_gain for split in result.splits]
    assert result.held_out_gain.mean == pytest.approx(np.mean(gains))
    assert result.held_out_gain.sd == pytest.approx(np.std(gains, ddof=1))
    # Splitting costs no forward pass and changes no score.
    plain = client.aggregate("shapes", samples, **request)
    assert plain.forward_passes == result.forward_passes and not plain.splits
    assert [row.score for row in plain.table] == pytest.approx([row.score for row in result.table])


def test_bad_splits_are_refused_with_the_field(client):
    paths = [s["path"] for s in load_samples("shapes")[:2]]
    methods = {"occlusion": {"window": 16, "stride": 16}}
    assert_status(lambda: client.aggregate("shapes", paths, methods=methods, validation_fraction=1.5),
                  grpc.StatusCode.INVALID_ARGUMENT, "validation_fraction")
    assert_status(lambda: client.aggregate("shapes", paths[:1], methods=methods, held_out=[0]),
                  grpc.StatusCode.INVALID_ARGUMENT, "held_out")
    assert_status(lambda: client.aggregate("shapes", paths, methods=methods, held_out=[2]),
                  grpc.StatusCode.INVALID_ARGUMENT, "held_out")
    still_serving(client)

"""Job results -> xai.v1 responses."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex
from onnxplain_client._proto.xai.v1 import methods_pb2, metrics_pb2
from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms
from onnxplain_client.tensors import to_tensor

from service.api.enums import (AGGREGATORS, CHANNEL_ORDERS, CORRUPTIONS, LAYOUTS, MAP_FRAMES, NORMALISATIONS,
                               OUTPUT_KINDS, PIXEL_RANGES, RESIZE_POLICIES, SCORE_SPACES, STOP_REASONS)
from service.audit.run import AuditOutcome
from service.explainers.precision import Precision
from service.ensembles.validation import SplitScore, Spread
from service.jobs.aggregate import AggregateResult, Combination
from service.jobs.measure import MeasureResult
from service.jobs.consistency import ConsistencyResult
from service.jobs.evaluate import EvaluateResult, Scored
from service.jobs.explain import ExplainResult
from service.jobs.predict import ClassScore, PredictResult
from service.jobs.scales import ScaleResult
from service.measures import summary as measures_summary
from service.runtime import images
from service.runtime.model import LoadedModel, ModelInfo
from service.runtime.scores import EXPLANATION_SPACE, METRIC_SPACE


def model_info(info: ModelInfo) -> ms.ModelInfo:
    signature = info.signature
    p = info.preprocessing
    return ms.ModelInfo(
        name=info.name, source=info.source, sha256=info.sha256,
        input=ms.TensorInfo(name=signature.input_name, datatype=_onnx_type(signature.input_elem_type),
                            shape=[d or -1 for d in signature.input_dims]),
        output=ms.TensorInfo(name=signature.output_name, datatype="tensor(float)",
                             shape=[d or -1 for d in signature.output_graph_dims or signature.output_dims]),
        layout=LAYOUTS[info.layout], height=info.height, width=info.width, channels=info.channels,
        fixed_batch=info.fixed_batch, max_batch=info.max_batch,
        output_kind=OUTPUT_KINDS[info.output_kind], output_kind_source=info.output_kind_source,
        preprocessing=ms.Preprocessing(pixel_range=PIXEL_RANGES[p.pixel_range], mean=p.mean, std=p.std,
                                       channel_order=CHANNEL_ORDERS[p.channel_order],
                                       resize=RESIZE_POLICIES[p.resize], pad_value=p.pad_value),
        preprocessing_source=info.preprocessing_source, num_classes=info.num_classes, labels=info.labels,
        provider=info.provider, description=info.description,
        dynamic_height=info.dynamic_height, dynamic_width=info.dynamic_width, logit_source=info.logit_source.value,
        logits_tensor=info.logits_output or "", threshold=info.threshold, graph_outputs=signature.graph_outputs,
        batch_axis=info.batch_axis.value, batch_axis_reason=info.batch_axis_reason,
        batch_axis_rewrites=info.batch_axis_rewrites, precision=info.precision,
        precision_reason=info.precision_reason, layout_source=info.layout_source,
        preprocessing_sources=dict(info.preprocessing_sources),
    )


def _onnx_type(elem_type: int) -> str:
    return f"tensor({onnx.helper.tensor_dtype_to_np_dtype(elem_type).name})"


def class_score(score: ClassScore) -> ex.ClassScore:
    return ex.ClassScore(class_index=score.class_index, label=score.label, score=score.score)


def predict_response(model: LoadedModel, result: PredictResult, timings: ex.Timings) -> ex.PredictResponse:
    return ex.PredictResponse(
        model_name=model.info.name,
        predictions=[ex.Prediction(top=[class_score(s) for s in top], scores=to_tensor(row[None].astype(np.float32)),
                                   above_threshold=[class_score(s) for s in positive])
                     for top, row, positive in zip(result.top, result.scores, result.above_threshold)],
        forward_passes=len(result.scores), provider=model.info.provider, timings=timings,
        score_space=SCORE_SPACES[result.score_space],
    )


def explain_response(model: LoadedModel, result: ExplainResult, timings: ex.Timings) -> ex.ExplainResponse:
    return ex.ExplainResponse(
        model_name=model.info.name,
        method=result.method,
        attributions=[_attribution(result, i) for i in range(len(result.targets))],
        seed=result.seed,
        forward_passes=result.forward_passes,
        provider=model.info.provider,
        timings=timings,
        baseline=ex.BaselineReport(target_scores=result.baseline_scores,
                                   predicted=class_score(result.baseline_predicted)),
        score_space=SCORE_SPACES[result.score_space],
        metric_score_space=SCORE_SPACES[result.metric_score_space],
        model_input_image=to_tensor(np.rint(result.image * 255).astype(np.uint8)),
        parameters_json=result.parameters_json,
        map_frame=MAP_FRAMES["model_input" if result.placement is None else "image"],
        placement=None if result.placement is None else ex.ImagePlacement(**dataclasses.asdict(result.placement)),
    )


def _attribution(result: ExplainResult, index: int) -> ex.Attribution:
    target = result.targets[index]
    attribution = ex.Attribution(
        class_index=target.class_index, label=target.label, score=target.score,
        map=to_tensor(returned_map(result, index)),
        metrics=[metric_result(s) for s in (result.metrics[index] if result.metrics else [])],
    )
    details = result.details[index] if result.details else {}
    if details and result.method in DETAILS:
        getattr(attribution, result.method).CopyFrom(DETAILS[result.method](details))
    if result.precision is not None:
        attribution.precision.CopyFrom(precision(result, index))
    return attribution


def returned_map(result: ExplainResult, index: int, maps: np.ndarray | None = None) -> np.ndarray:
    """A map as the response carries it: in the image's own frame for a letterboxed image (``map_frame``).
    ``maps`` (T, H, W) at the model input, by default the result's maps (also: their standard errors)."""
    attribution = (result.maps if maps is None else maps)[index].astype(np.float32)
    return attribution if result.placement is None else images.to_image_frame(attribution, result.placement)


def precision(result: ExplainResult, index: int, with_standard_error: bool = True) -> ex.Precision:
    """Target ``index``'s precision; its standard error in the map's frame, mapped back as the map is (left out
    without ``with_standard_error``). Empty for a deterministic method (the studies' entries stay aligned)."""
    known = result.precision
    if known is None:
        return ex.Precision()
    return precision_numbers(known, index, float(result.parameters.get("target_reliability", 0.0)), to_tensor(
        returned_map(result, index, known.standard_error)) if with_standard_error else None)


def precision_numbers(known: Precision | None, index: int = 0, target: float = 0.0,
                      standard_error=None) -> ex.Precision:
    """A precision without its map (``standard_error`` a tensor already placed, or None); empty for None."""
    if known is None:
        return ex.Precision()
    return ex.Precision(
        standard_error=standard_error, reliability=float(known.reliability[index]), samples=known.samples,
        max_samples=known.max_samples, forward_passes=known.forward_passes, rounds=known.rounds,
        stop_reason=STOP_REASONS[known.stop_reason], samples_for_target=known.samples_for_target,
        target_reliability=target,
    )


def wcam_details(details: dict, pictures: bool = True) -> ex.WcamDetails:
    """WCAM's details; without ``pictures``, its numbers only (no wavelet map, no sufficient image)."""
    sufficient = details.get("sufficient_image") if pictures else None
    return ex.WcamDetails(
        wavelet_map=to_tensor(np.asarray(details["wavelet_map"], dtype=np.float32)) if pictures else None,
        level_importance=details["level_importance"],
        subbands=[ex.SubbandImportance(name=b["name"], level=b["level"], importance=b["importance"])
                  for b in details["subband_importance"]],
        approximation_share=details["approximation_share"],
        sufficient_image=None if sufficient is None else to_tensor(np.rint(sufficient * 255).astype(np.uint8)),
        sufficient_depth=details.get("sufficient_depth", -1),
        levels=details["levels"], wavelet=details["wavelet"], grid_size=details["grid_size"],
        uninformative=details.get("uninformative", False),
        level_importance_lower=details["level_importance_lower"],
        level_importance_upper=details["level_importance_upper"],
        subband_importance_lower=details["subband_importance_lower"],
        subband_importance_upper=details["subband_importance_upper"],
        confidence=details["confidence"], dominant_level_resolved=details["dominant_level_resolved"],
        sufficient_depth_resolved=details["sufficient_depth_resolved"],
    )


def eva_details(details: dict) -> ex.EvaDetails:
    return ex.EvaDetails(
        adversarial_overlap=details["adversarial_overlap"], group_overlaps=details["group_overlaps"],
        group_importance=details["group_importance"], competitors=details["competitors"],
        segments=to_tensor(np.asarray(details["segments"], dtype=np.int32)), certified=details["certified"],
        bound_method=methods_pb2.BoundMethod.Value(f"BOUND_METHOD_{details['bound_method'].upper()}"),
        epsilon=details["epsilon"], certified_radius=details["certified_radius"] or 0.0,
        split_layer=details["split_layer"], verified=details.get("verified", ""),
        head_runtime=details.get("head_runtime", ""),
        group_standard_error=details.get("group_standard_error", []),
        hybrid_samples_used=details.get("hybrid_samples_used", 0),
        ball_certified=details.get("ball_certified", False), radius_source=details.get("radius_source", ""),
    )


# Methods whose details travel in a typed message of Attribution's `details` oneof, by method name.
DETAILS = {"wcam": wcam_details, "eva": eva_details}


def verification(report: dict) -> ms.Verification:
    checks = [ms.BoundMethodCheck(**check) for check in report.get("method_checks", [])]
    return ms.Verification(**{key: value for key, value in report.items() if key != "method_checks"},
                           method_checks=checks)


def metric_result(scored: Scored) -> metrics_pb2.MetricResult:
    result = scored.result
    return metrics_pb2.MetricResult(
        name=result.name, score=result.score, forward_passes=scored.forward_passes,
        fractions=[] if result.fractions is None else result.fractions.tolist(),
        curve=[] if result.curve is None else result.curve.tolist(),
        values={k: float(v) for k, v in result.values.items()},
        standard_error=result.standard_error,
    )


def evaluate_response(model: LoadedModel, result: EvaluateResult, timings: ex.Timings) -> ex.EvaluateResponse:
    return ex.EvaluateResponse(
        model_name=model.info.name, class_index=result.class_index, label=result.label,
        results=[metric_result(s) for s in result.scored], seed=result.seed,
        forward_passes=result.forward_passes, provider=model.info.provider, timings=timings,
        attribution_frame=MAP_FRAMES[result.attribution_frame],
        score_space=SCORE_SPACES[result.score_space],
    )


def _matrix(values: np.ndarray) -> ex.Matrix:
    return ex.Matrix(size=len(values), values=np.asarray(values, dtype=np.float64).ravel().tolist())


def consistency_result(model: LoadedModel, result: ConsistencyResult, timings: ex.Timings,
                       return_maps: bool) -> ex.ConsistencyResult:
    return ex.ConsistencyResult(
        model_name=model.info.name, class_index=result.class_index, label=model.info.label(result.class_index),
        settings=result.labels, spearman=_matrix(result.spearman), ssim=_matrix(result.ssim),
        top_iou=_matrix(result.top_iou), metric=result.metric,
        rankings=[ex.MetricRanking(baseline=label, scores=scores.tolist(), ranks=ranks.tolist())
                  for label, scores, ranks in zip(result.baseline_labels, result.scores, result.ranks)],
        kendall_tau=_matrix(result.kendall_tau),
        maps=[to_tensor(m.astype(np.float32)) for m in result.maps] if return_maps else [],
        seed=result.seed, forward_passes=result.forward_passes, timings=timings,
        score_space=SCORE_SPACES[result.score_space], metric_score_space=SCORE_SPACES[result.metric_score_space],
        setting_precision=[precision(explanation, 0, with_standard_error=return_maps)
                           for explanation in result.explanations],
    )


def aggregate_result(model: LoadedModel, result: AggregateResult, timings: ex.Timings,
                     return_members: bool) -> ex.AggregateResult:
    def combination(row: Combination) -> ex.Combination:
        return ex.Combination(normalisation=NORMALISATIONS[row.normalisation], aggregator=AGGREGATORS[row.aggregator],
                              kappa=row.kappa, score=row.score)

    return ex.AggregateResult(
        model_name=model.info.name, class_indices=result.class_indices, members=result.member_labels,
        member_scores=to_tensor(result.member_scores.astype(np.float64)), chosen=combination(result.chosen),
        table=[combination(row) for row in result.table],
        aggregates=[to_tensor(a.astype(np.float32)) for a in result.aggregates],
        aggregate_scores=result.aggregate_scores.tolist(), gain=result.gain, metric=result.metric,
        higher_is_better=result.higher_is_better,
        member_maps=to_tensor(result.member_maps) if return_members else None,
        seed=result.seed, forward_passes=result.forward_passes, timings=timings,
        score_space=SCORE_SPACES[result.score_space], metric_score_space=SCORE_SPACES[result.metric_score_space],
        member_precision=[precision_numbers(known, target=target) for row in result.member_precision
                          for known, target in zip(row, result.member_target_reliability)],
        splits=[aggregate_split(split) for split in result.splits],
        held_out_gain=gain_spread(result.held_out_gain), selection_gain=gain_spread(result.selection_gain),
        split_seed=result.split_seed or 0,
    )


def aggregate_split(split: SplitScore) -> ex.AggregateSplit:
    return ex.AggregateSplit(
        selection=split.selection.tolist(), held_out=split.held_out.tolist(),
        selection_scores=split.selection_scores.tolist(), held_out_scores=split.held_out_scores.tolist(),
        member_selection_scores=split.member_selection_scores.tolist(),
        member_held_out_scores=split.member_held_out_scores.tolist(), chosen=split.chosen,
        best_member=split.best_member, selection_gain=split.selection_gain, held_out_gain=split.held_out_gain)


def gain_spread(gain: Spread | None) -> ex.GainSpread | None:
    if gain is None:
        return None
    return ex.GainSpread(mean=gain.mean, sd=gain.sd, standard_error=gain.standard_error, min=gain.minimum,
                         max=gain.maximum, splits=gain.count)


def _series(name: str, values, stats: dict) -> ex.Series:
    return ex.Series(name=name, values=[float(v) for v in values], summary=ex.Summary(**stats))


def measure_result(model: LoadedModel, result: MeasureResult, timings: ex.Timings, method: str) -> ex.MeasureResult:
    values = result.values
    response = ex.MeasureResult(model_name=model.info.name, method=method, class_indices=result.class_indices,
                                seed=result.seed, forward_passes=result.forward_passes, timings=timings,
                                score_space=SCORE_SPACES[result.score_space],
                                clean_precision=[precision_numbers(known, target=result.target_reliability)
                                                 for known in result.clean_precision],
                                # Empty, not NaN, for a deterministic method: no map had a reliability.
                                reliability=ex.Summary(**measures_summary(result.reliabilities))
                                if result.reliabilities else ex.Summary())
    if "entropy" in values:
        entropy = values["entropy"]
        response.entropy.extend([_series(kind, entropy[kind], entropy[f"{kind}_summary"])
                                 for kind in ("histogram", "spatial")])
    if "out_of_set" in values:
        noise = values["out_of_set"]
        response.noise_levels.extend(noise["levels"])
        response.noise_curves.extend(ex.NoiseCurve(scores=c["scores"], ssim=c["ssim"], score_auc=c["score_auc"],
                                                   ssim_auc=c["ssim_auc"]) for c in noise["curves"])
        response.out_of_set.extend(_series(kind, [c[kind] for c in noise["curves"]], noise[f"{kind}_summary"])
                                   for kind in ("score_auc", "ssim_auc"))
    if "transforms" in values:
        response.transforms.extend(_series(name, row["ssim"], row["summary"])
                                   for name, row in values["transforms"].items())
    if "stability" in values:
        response.stability_models.extend(result.models)
        pairs = np.asarray(values["stability"]["pairs"]).ravel()
        response.stability.append(_series("pairs", pairs, values["stability"]["summary"]))
    if "degradation" in values:
        for mode, row in values["degradation"].items():
            response.degradation.extend([_series(f"{mode}_score_drop", row["score_drop"], row["score_drop_summary"]),
                                         _series(f"{mode}_ssim", row["ssim"], row["ssim_summary"])])
    return response


def audit_result(outcome: AuditOutcome, data_dir: Path, timings: ex.Timings) -> ex.AuditResult:
    return ex.AuditResult(
        summary_json=json.dumps(outcome.summary, allow_nan=False),
        results_path=str(outcome.results.relative_to(data_dir)),
        summary_path=str(outcome.summary_path.relative_to(data_dir)),
        report_path=str(outcome.report.relative_to(data_dir)), computed=outcome.computed, total=outcome.total,
        timings=timings, score_space=SCORE_SPACES[EXPLANATION_SPACE], metric_score_space=SCORE_SPACES[METRIC_SPACE])


def method_info(declared, cost: str = "") -> ex.MethodInfo:
    """A method or a metric for ListMethods."""
    return ex.MethodInfo(name=declared.name, description=declared.summary, reference=declared.reference, cost=cost,
                         parameters=[ex.ParameterInfo(**p) for p in declared.describe_parameters()])


def scales_result(model: LoadedModel, result: ScaleResult, timings: ex.Timings,
                  return_maps: bool) -> ex.AnalyzeScalesResult:
    variants = []
    for row in result.rows:
        variant = ex.ScaleVariant(
            name=row.variant.name, severity=row.variant.severity, zoom=row.variant.zoom,
            corruption=CORRUPTIONS[row.variant.corruption] if row.variant.corruption else 0,
            predicted=class_score(row.predicted), target_score=row.target_score,
            level_importance=row.details["level_importance"],
            approximation_share=row.details["approximation_share"],
            wcam=wcam_details(row.details, pictures=return_maps),
            precision=precision(row.explanation, 0, with_standard_error=return_maps),
        )
        if return_maps:
            variant.image.CopyFrom(to_tensor(np.rint(row.image * 255).astype(np.uint8)))
            variant.map.CopyFrom(to_tensor(row.map.astype(np.float32)))
        variants.append(variant)
    return ex.AnalyzeScalesResult(model_name=model.info.name, class_index=result.class_index, label=result.label,
                                  variants=variants, seed=result.seed, forward_passes=result.forward_passes,
                                  timings=timings, score_space=SCORE_SPACES[result.score_space])

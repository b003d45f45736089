"""Audit results as pandas DataFrames: one row per item x model x method with its metrics (``to_dataframe``),
and one row per model x method with the summary's accuracy and mean metrics (``summary_dataframe``).

pandas (and pyarrow, for ``DataFrame.to_parquet``) are the ``dataframe`` extra
(``pip install 'onnxplain-client[dataframe]'``), imported only when a frame is built. The per-item rows are read
from the audit's SQLite store (``results.sqlite``, the standard library reads it) in read-only mode.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

RESULT_COLUMNS = ["model", "method", "item", "label", "predicted", "score", "correct", "seconds"]
SUMMARY_COLUMNS = ["model", "method", "items", "accuracy", "seconds_per_item", "reliability"]


def _pandas():
    try:
        import pandas
    except ImportError as error:
        raise ImportError("audit results as DataFrames need pandas: pip install 'onnxplain-client[dataframe]'") \
            from error
    return pandas


def results_dataframe(path: str | Path):
    """The rows of an audit's ``results.sqlite``: ``RESULT_COLUMNS`` (``correct`` is None without a label), then
    one float column per metric (NaN where a row lacks it), ordered by model, method, item."""
    pandas = _pandas()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no audit results there")
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT model, method, item, label, predicted, score, correct, seconds, metrics "
                                  "FROM results ORDER BY model, method, item").fetchall()
    finally:
        connection.close()
    records, names = [], set()
    for *values, metrics in rows:
        record = dict(zip(RESULT_COLUMNS, values))
        record["correct"] = None if record["correct"] is None else bool(record["correct"])
        scores = {name: (float("nan") if value is None else float(value))
                  for name, value in json.loads(metrics).items()}
        names.update(scores)
        records.append({**record, **scores})
    columns = RESULT_COLUMNS + sorted(names)
    frame = pandas.DataFrame.from_records(records, columns=columns)
    for name in sorted(names):
        frame[name] = frame[name].astype(float)
    return frame


def summary_dataframe(summary: dict[str, Any] | str):
    """One row per (model, method) group of an audit's summary (its ``summary_json`` or ``summary.json``, parsed or
    not): ``SUMMARY_COLUMNS`` (reliability: the mean over a randomized method's maps, else NaN), then each metric's
    mean, NaN where undefined."""
    pandas = _pandas()
    if isinstance(summary, str):
        summary = json.loads(summary)
    groups = summary.get("groups", [])
    names = sorted({name for group in groups for name in group.get("metrics", {})})
    records = []
    for group in groups:
        reliability = (group.get("reliability") or {}).get("mean")
        record = {"model": group["model"], "method": group["method"], "items": group["items"],
                  "accuracy": group.get("accuracy"), "seconds_per_item": group.get("seconds_per_item"),
                  "reliability": reliability}
        record.update({name: group.get("metrics", {}).get(name) for name in names})
        records.append(record)
    frame = pandas.DataFrame.from_records(records, columns=SUMMARY_COLUMNS + names)
    for column in ["accuracy", "seconds_per_item", "reliability", *names]:
        frame[column] = frame[column].astype(float)
    return frame

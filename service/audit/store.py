"""The audit's results in SQLite: one row per (model, method, item), committed as soon as it is produced.

The plan is stored with the results; reopening a store under another plan is refused, since results of two
plans would not compare. A row's presence is what "done" means, so a resumed audit skips exactly what was
written and recomputes nothing.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from service.errors import FailedPrecondition

SCHEMA = """
CREATE TABLE IF NOT EXISTS plan (id INTEGER PRIMARY KEY CHECK (id = 1), plan TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    model TEXT NOT NULL, method TEXT NOT NULL, item TEXT NOT NULL,
    label INTEGER, predicted INTEGER NOT NULL, score REAL NOT NULL, correct INTEGER,
    metrics TEXT NOT NULL, curves TEXT NOT NULL, details TEXT NOT NULL,
    map BLOB NOT NULL, map_shape TEXT NOT NULL, seconds REAL NOT NULL,
    PRIMARY KEY (model, method, item)
);
"""


class ResultStore:
    def __init__(self, path: Path, plan: dict[str, Any], field: str = "out") -> None:
        """``field``: what the caller named the folder by (the CLI's --out, the RPC's name), for the refusal."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.executescript(SCHEMA)
        text = json.dumps(plan, sort_keys=True, default=list)
        stored = self.connection.execute("SELECT plan FROM plan WHERE id = 1").fetchone()
        if stored is None:
            self.connection.execute("INSERT INTO plan (id, plan) VALUES (1, ?)", (text,))
        elif stored[0] != text:
            raise FailedPrecondition(f"{path} holds results of another plan; audit into another folder or repeat "
                                     "the same plan to resume it", field=field)

    def done(self) -> set[tuple[str, str, str]]:
        return {tuple(row) for row in self.connection.execute("SELECT model, method, item FROM results")}

    def add(self, *, model: str, method: str, item: str, label: int | None, predicted: int, score: float,
            metrics: dict[str, float], curves: dict[str, list[float]], details: dict[str, Any],
            attribution: np.ndarray, seconds: float) -> None:
        """One result; ``curves`` are the curve metrics' scores along their paths, ``details`` the method's
        numbers worth aggregating (WCAM's level importance, EVA's certification)."""
        compact = compact_map(attribution)
        self.connection.execute(
            "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (model, method, item, label, predicted, score, None if label is None else int(label == predicted),
             json.dumps(metrics, sort_keys=True), json.dumps(curves, sort_keys=True),
             json.dumps(details, sort_keys=True), compact.tobytes(), json.dumps(list(compact.shape)), seconds))

    def member_rows(self, model: str, item: str, methods: list[str]) -> list[dict[str, Any]]:
        """The stored rows of ``methods`` for one model and item, in the order of ``methods``."""
        found = {row["method"]: row for row in self.rows("WHERE model = ? AND item = ?", (model, item))}
        return [found[method] for method in methods if method in found]

    def rows(self, where: str = "", parameters: tuple = ()) -> Iterator[dict[str, Any]]:
        cursor = self.connection.execute(
            "SELECT model, method, item, label, predicted, score, correct, metrics, curves, details, map, map_shape, "
            f"seconds FROM results {where} ORDER BY model, method, item", parameters)
        for (model, method, item, label, predicted, score, correct, metrics, curves, details, blob, shape,
             seconds) in cursor:
            yield {"model": model, "method": method, "item": item, "label": label, "predicted": predicted,
                   "score": score, "correct": None if correct is None else bool(correct),
                   "metrics": json.loads(metrics), "curves": json.loads(curves), "details": json.loads(details),
                   "map": stored_map(blob, json.loads(shape)),
                   "seconds": seconds}

    def close(self) -> None:
        self.connection.close()


def compact_map(attribution: np.ndarray) -> np.ndarray:
    """A map as stored: float16 (half the bytes, 3 significant digits, enough to look at and re-score), or
    float32 where a value is beyond float16's range (65504), which float16 would silently turn into infinity."""
    with np.errstate(over="ignore"):  # the overflow is the case checked for below
        compact = attribution.astype(np.float16)
    return compact if np.array_equal(np.isfinite(compact), np.isfinite(attribution)) \
        else attribution.astype(np.float32)


def stored_map(blob: bytes, shape: list[int]) -> np.ndarray:
    """The map ``compact_map`` stored: its dtype is told by its size (2 or 4 bytes a value), so stores written
    before float32 maps existed read the same."""
    dtype = np.float16 if len(blob) == 2 * int(np.prod(shape)) else np.float32
    return np.frombuffer(blob, dtype).reshape(shape).astype(np.float32)

"""The feedback index: where predictions and ground truth meet, shared by every worker.

One SQLite database in WAL mode, ``<PREDICTION_LOG_DIR>/index.sqlite3``: several processes
read and write it safely (writers take turns under SQLite's own lock, ``BEGIN IMMEDIATE``), so
feedback may reach another worker than its prediction did. Predictions are not copied into
it: feedback finds them in the segments through their id files (``idfiles.py``). Tables:

- ``feedback``: the first label or value received per id, ``state`` 0 pending (no prediction
  with that id yet), 1 joined, 2 rejected (a label for a regressor or a value for a
  classifier), and the segment of the prediction it was joined with (rows go when the disk
  bound deletes that segment);
- ``labelled``: joined pairs, in the order they were joined, trimmed to the newest
  ``LIVE_QUALITY_WINDOW`` per model version; ``labelled_counts`` counts every join ever made
  per model version (each prediction once: ``labelled.id`` is unique).

No feedback is ever left behind by a race between a worker logging a prediction and another
receiving its feedback: a worker looks the prediction up inside its feedback transaction, and
a writer looks for waiting feedback in a transaction of its own only after the prediction's
lines and id entries are written, so one of the two always sees the other.

Feedback rules (docs/feedback.md): first feedback per id wins (later ones are reported as
duplicates and ignored); feedback before its prediction waits ``FEEDBACK_PENDING_SECONDS``
and is joined when the prediction is logged; feedback for an id whose segment was deleted
(or that was never logged) stays unmatched.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.serve.predlog.dirlock import exclusive
from src.serve.predlog.idfiles import LoggedPrediction, find_logged

INDEX_FILE = "index.sqlite3"
INIT_LOCK_FILE = ".index.lock"
BUSY_TIMEOUT_MS = 10_000
PENDING, JOINED, REJECTED = 0, 1, 2
KIND_FOR_TASK = {"classification": "label", "regression": "value"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, truth, received_at REAL NOT NULL,
    state INTEGER NOT NULL, segment TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS feedback_pending ON feedback (received_at) WHERE state = 0;
CREATE INDEX IF NOT EXISTS feedback_segment ON feedback (segment) WHERE segment IS NOT NULL;
CREATE TABLE IF NOT EXISTS labelled (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, model TEXT NOT NULL,
    version TEXT NOT NULL, prediction, truth, labelled_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS labelled_version ON labelled (model, version, seq);
CREATE TABLE IF NOT EXISTS labelled_counts (
    model TEXT NOT NULL, version TEXT NOT NULL, task TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (model, version)
);
"""

#: An index written before predictions moved to id files: its per-prediction table is
#: dropped and feedback gains the segment column (joined rows keep a null segment).
MIGRATION = """
DROP TABLE IF EXISTS predictions;
ALTER TABLE feedback ADD COLUMN segment TEXT;
"""


@dataclass(frozen=True)
class FeedbackItem:
    """One piece of ground truth: ``kind`` is ``label`` (classifiers) or ``value``."""

    id: str
    kind: str
    truth: Any


@dataclass
class FeedbackOutcome:
    """What became of a feedback request's items (ids in the order they were sent)."""

    matched: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class VersionWindow:
    """The newest labelled pairs of one model version, and its all-time labelled count."""

    model: str
    version: str
    task: str
    labelled_total: int
    predictions: list[Any]
    truths: list[Any]


def _json_ids(ids: Iterable[str]) -> str:
    """Ids as one JSON array parameter (``IN (SELECT value FROM json_each(?))``)."""
    return json.dumps(list(ids))


def normalise(task: str, value: Any) -> Any:
    """How predictions and truths are stored: class labels as strings, values as floats."""
    return str(value) if task == "classification" else float(value)


class FeedbackIndex:
    """One connection to the shared index (thread-safe: calls take a lock)."""

    def __init__(self, log_dir: Path, *, clock: Any = time.time) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = log_dir
        self.path = log_dir / INDEX_FILE
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Switching a new database to WAL takes SQLite's exclusive lock without waiting for
        # it (no busy timeout): two workers opening a fresh index at once would leave one
        # failing its start-up with "database is locked". On a WAL database it is a no-op.
        with exclusive(log_dir / INIT_LOCK_FILE):
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        with self._transaction() as db:
            columns = {row[1] for row in db.execute("PRAGMA table_info(feedback)")}
            if columns and "segment" not in columns:
                for statement in MIGRATION.split(";"):
                    if statement.strip():
                        db.execute(statement)
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    # --- writes ---------------------------------------------------------------------------

    def join_logged(self, logged: Callable[[], Sequence[LoggedPrediction]]) -> int:
        """Join feedback that was waiting for just-logged predictions (call it after their
        lines and id entries are written); ``logged`` builds them, called only when some
        feedback is waiting. Returns how many were joined."""
        with self._transaction() as db:
            (pending,) = db.execute(
                "SELECT EXISTS (SELECT 1 FROM feedback WHERE state = 0)"
            ).fetchone()
            if not pending:  # the common case: no feedback is waiting for its prediction
                return 0
            first: dict[str, LoggedPrediction] = {}
            for prediction in logged():  # the first prediction with an id is the one joined
                first.setdefault(prediction.id, prediction)
            if not first:
                return 0
            joined, _ = self._join(db, first)
            return len(joined)

    def add_feedback(self, items: Sequence[FeedbackItem]) -> FeedbackOutcome:
        """Store feedback (first per id wins) and join what has a logged prediction."""
        outcome = FeedbackOutcome()
        fresh: dict[str, FeedbackItem] = {}
        for item in items:
            fresh.setdefault(item.id, item)
        now = self._clock()
        with self._transaction() as db:
            known = {
                row[0]
                for row in db.execute(
                    "SELECT id FROM feedback WHERE id IN (SELECT value FROM json_each(?))",
                    (_json_ids(fresh),),
                )
            }
            new = [item for item in fresh.values() if item.id not in known]
            db.executemany(
                "INSERT INTO feedback VALUES (?, ?, ?, ?, 0, NULL)",
                [(f.id, f.kind, f.truth, now) for f in new],
            )
            joined, rejected = self._join(db, find_logged(self.log_dir, [f.id for f in new]))
        seen: set[str] = set()
        for item in items:  # first per id wins, within a request and across requests
            if item.id in seen or item.id in known:
                outcome.duplicates.append(item.id)
            seen.add(item.id)
        joined_set, rejected_ids = set(joined), {r["request_id"] for r in rejected}
        outcome.matched = [f.id for f in new if f.id in joined_set]
        outcome.rejected = rejected
        outcome.unmatched = [
            f.id for f in new if f.id not in joined_set and f.id not in rejected_ids
        ]
        return outcome

    def _join(
        self, db: sqlite3.Connection, logged: Mapping[str, LoggedPrediction]
    ) -> tuple[list[str], list[dict]]:
        """Join the pending feedback of these logged predictions (transaction held)."""
        joined: list[str] = []
        rejected: list[dict[str, str]] = []
        now = self._clock()
        counts: dict[tuple[str, str, str], int] = {}
        waiting = db.execute(
            "SELECT id, kind, truth FROM feedback WHERE state = 0 AND id IN "
            "(SELECT value FROM json_each(?))",
            (_json_ids(logged),),
        ).fetchall()
        for fid, kind, truth in waiting:
            _, model, version, task, prediction, segment = logged[fid]
            expected = KIND_FOR_TASK[task]
            if kind != expected:
                db.execute(
                    "UPDATE feedback SET state = 2, segment = ? WHERE id = ?", (segment, fid)
                )
                rejected.append(
                    {
                        "request_id": fid,
                        "message": f"{model} {version} is a {task} model: send "
                        f"{expected!r}, not {kind!r}",
                    }
                )
                continue
            cursor = db.execute(
                "INSERT OR IGNORE INTO labelled (id, model, version, prediction, truth, "
                "labelled_at) VALUES (?, ?, ?, ?, ?, ?)",
                (fid, model, version, normalise(task, prediction), normalise(task, truth), now),
            )
            db.execute("UPDATE feedback SET state = 1, segment = ? WHERE id = ?", (segment, fid))
            if cursor.rowcount:
                joined.append(fid)
                key = (model, version, task)
                counts[key] = counts.get(key, 0) + 1
        db.executemany(
            "INSERT INTO labelled_counts VALUES (?, ?, ?, ?) ON CONFLICT (model, version) "
            "DO UPDATE SET n = n + excluded.n",
            [(*key, n) for key, n in counts.items()],
        )
        return joined, rejected

    def prune_segments(self, segments: Iterable[str]) -> None:
        """Forget the feedback of predictions in deleted segments (rotated names)."""
        names = list(segments)
        if not names:
            return
        with self._transaction() as db:
            db.execute(
                "DELETE FROM feedback WHERE segment IN (SELECT value FROM json_each(?))",
                (_json_ids(names),),
            )

    def expire_pending(self, older_than_seconds: float) -> int:
        """Drop feedback that waited longer than allowed for its prediction."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM feedback WHERE state = 0 AND received_at < ?",
                (self._clock() - older_than_seconds,),
            )
            return cursor.rowcount

    def trim_windows(self, window: int) -> None:
        """Keep the newest ``window`` labelled pairs per model version."""
        with self._transaction() as db:
            versions = db.execute("SELECT model, version FROM labelled_counts").fetchall()
            for model, version in versions:
                db.execute(
                    "DELETE FROM labelled WHERE model = ? AND version = ? AND seq <= "
                    "(SELECT seq FROM labelled WHERE model = ? AND version = ? "
                    "ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                    (model, version, model, version, window),
                )

    # --- reads ----------------------------------------------------------------------------

    def windows(self, window: int) -> list[VersionWindow]:
        """The newest ``window`` labelled pairs of every model version with feedback."""
        with self._lock:
            versions = self._db.execute(
                "SELECT model, version, task, n FROM labelled_counts ORDER BY model, version"
            ).fetchall()
            out = []
            for model, version, task, n in versions:
                pairs = self._db.execute(
                    "SELECT prediction, truth FROM labelled WHERE model = ? AND version = ? "
                    "ORDER BY seq DESC LIMIT ?",
                    (model, version, window),
                ).fetchall()
                out.append(
                    VersionWindow(
                        model, version, task, n, [p for p, _ in pairs], [t for _, t in pairs]
                    )
                )
        return out

    def joined_truths(self, ids: Sequence[str]) -> dict[str, Any]:
        """The joined truth of each of ``ids`` that has one (for the labelled CSV)."""
        out: dict[str, Any] = {}
        with self._lock:
            out.update(
                self._db.execute(
                    "SELECT id, truth FROM feedback WHERE state = 1 AND id IN "
                    "(SELECT value FROM json_each(?))",
                    (_json_ids(ids),),
                ).fetchall()
            )
        return out

"""TrainingWorkflow: the Metaflow flow that turns a config into a published model artifact.

    python run_training_workflow.py run --config src/training/config.yaml

Steps: start (validate config) -> load_data (load + validate) -> split -> train_candidate
(foreach candidate: grid search with K-fold CV on the training split) -> join (pick the best,
deterministic ties) -> evaluate (held-out test metrics, ONNX + parity, report card) ->
quality_gate (fails the run below the bound; nothing is published) -> publish -> end.

The fitted pipeline (``model``), its joblib bytes (``model_joblib``, published unchanged),
the draft metadata (``metadata``) and the ONNX bytes (``onnx_model``) are artifacts of the
run, so ``python -m src.training.publish_run TrainingWorkflow/<run_id>`` can publish any
finished run, including remote ones.

Heavy libraries (pandas, scikit-learn, skl2onnx, matplotlib) are imported inside the steps
that need them: every step is a new Python process, and light steps start faster this way.

``@resources`` sizes each step's pod on Kubernetes/Argo (ignored by local runs); schedules and
event triggers are deploy-time settings (``src.training.retraining``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from metaflow import FlowSpec, IncludeFile, Parameter, card, current, resources, step

from src.training.config import TrainingConfig
from src.training.deployed_config import deployed_config_default, deployed_publish_local_default
from src.training.errors import TrainingError
from src.training.retraining import with_retraining
from src.training.runtime import record_summary


@contextmanager
def reported() -> Iterator[None]:
    """Print a deliberate failure as one clear line (and record it), then let it fail the step."""
    try:
        yield
    except TrainingError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        record_summary([str(exc)], failed=True)
        raise


def render_card(blocks: list[Any]) -> None:
    """Append report blocks (`src.training.card`) to the current step's card."""
    from metaflow.cards import Image, Markdown, Table

    from src.training.card import ImageBlock, MarkdownBlock, TableBlock

    for block in blocks:
        if isinstance(block, MarkdownBlock):
            current.card.append(Markdown(block.text))
        elif isinstance(block, TableBlock):
            current.card.append(Table(block.rows, headers=block.headers))
        elif isinstance(block, ImageBlock):
            current.card.append(Image(block.png, label=block.label))


@with_retraining
class TrainingWorkflow(FlowSpec):
    """Train registered-trainer candidates, pick the best, gate it and publish it."""

    config = IncludeFile(
        "config",
        default=deployed_config_default,
        is_text=True,
        help="YAML training config (its content is stored with the run)",
    )
    publish_local = Parameter(
        "publish_local",
        type=bool,
        default=deployed_publish_local_default,
        help="write the artifact to output_dir in the publish step; set false for remote runs "
        "and publish with `python -m src.training.publish_run TrainingWorkflow/<run_id>`",
    )

    def _cfg(self) -> TrainingConfig:
        return TrainingConfig.model_validate(self.cfg)

    @resources(cpu=0.5, memory=512)
    @step
    def start(self) -> None:
        """Validate the config (and the signing key, if any) before any work."""
        from src.training.config_loader import parse_config_text
        from src.training.metadata import RunInfo, git_commit
        from src.training.signing import check_signing_settings

        with reported():
            cfg = parse_config_text(self.config, origin="--config")
            check_signing_settings()
        self.cfg: dict[str, Any] = cfg.model_dump(mode="json")
        self.run_info = RunInfo(current.flow_name, current.run_id, git_commit()).as_dict()
        print(
            f"config ok: trainer {cfg.trainer}, model {cfg.model_name}, task {cfg.task}, "
            f"{len(cfg.candidates)} candidate(s), selection metric {cfg.metric}"
        )
        self.next(self.load_data)

    @resources(cpu=1, memory=2048)
    @step
    def load_data(self) -> None:
        """Load the trainer's data and validate it."""
        from src.training.steps import load_and_validate, make_trainer

        with reported():
            self.loaded = load_and_validate(make_trainer(self._cfg()))
        spec = self.loaded.data.spec
        print(
            f"loaded {len(self.loaded.data.frame)} rows from {self.loaded.source}: "
            f"{len(spec.numeric)} numeric + {len(spec.categorical)} categorical feature(s), "
            f"fingerprint {self.loaded.fingerprint[:16]}"
        )
        self.next(self.split)

    @resources(cpu=0.5, memory=2048)
    @step
    def split(self) -> None:
        """Seeded train/test split (stratified for classification), one branch per candidate."""
        from src.training.steps import make_trainer, split_data

        cfg = self._cfg()
        self.data_split = split_data(make_trainer(cfg), self.loaded)
        self.candidate_names = [c.name for c in cfg.candidates]
        print(f"train {len(self.data_split.X_train)} rows, test {len(self.data_split.X_test)} rows")
        self.next(self.train_candidate, foreach="candidate_names")

    @resources(cpu=1, memory=2048)
    @step
    def train_candidate(self) -> None:
        """Grid search + K-fold CV of one candidate on the training split, refit on all of it."""
        from src.training.steps import make_trainer, train_candidate

        cfg = self._cfg()
        with reported():
            self.result = train_candidate(
                make_trainer(cfg),
                self.loaded.data.spec,
                cfg.candidate(self.input),
                self.data_split.X_train,
                self.data_split.y_train,
            )
        r = self.result
        print(f"{r.name}: cv {cfg.metric} {r.cv_mean:.4f} +/- {r.cv_std:.4f} with {r.params}")
        self.next(self.join)

    @resources(cpu=0.5, memory=1024)
    @step
    def join(self, inputs: Any) -> None:
        """Pick the best candidate by CV score (ties: the one listed first in the config)."""
        from src.training.steps import choose_best, in_config_order

        self.results = in_config_order(inp.result for inp in inputs)
        self.merge_artifacts(inputs, exclude=["result"])
        metric = self._cfg().metric
        best = choose_best(self.results, metric)
        self.best_name = best.name
        print(f"best candidate: {best.name} (cv {metric} {best.cv_mean:.4f})")
        self.next(self.evaluate)

    @resources(cpu=1, memory=2048)
    @card(type="blank", id="training_report")
    @step
    def evaluate(self) -> None:
        """Held-out test metrics, ONNX export with parity check, metadata and the report card."""
        from src.training.card import build_report
        from src.training.metadata import RunInfo
        from src.training.steps import evaluate_best, make_trainer

        best = next(r for r in self.results if r.name == self.best_name)
        evaluation = evaluate_best(
            make_trainer(self._cfg()),
            self.loaded,
            self.data_split,
            self.results,
            best,
            RunInfo(
                self.run_info["flow_name"], self.run_info["run_id"], self.run_info["git_commit"]
            ),
        )
        self.model = best.model
        self.model_joblib = evaluation.model_joblib
        self.metadata = evaluation.draft_metadata
        self.onnx_model = evaluation.onnx.model_bytes
        self.test_metrics = evaluation.test_metrics
        self.gate = evaluation.gate
        onnx = evaluation.onnx.info
        if onnx.get("path"):
            print(
                f"ONNX export ok ({onnx['converter']}, opset {onnx['opset']}, "
                f"{onnx['precision']}): {onnx['parity']}"
            )
        else:
            print(f"ONNX not exported: {onnx['reason']}")
        for candidate in self.metadata["metrics"]["candidates"]:
            if "onnx" in candidate:
                compiled = candidate["onnx"]
                print(
                    f"ONNX of candidate {candidate['name']}: "
                    f"{compiled['precision'] or 'not compiled: ' + compiled['reason']}"
                )
        render_card(
            build_report(self.metadata, list(self.data_split.y_test), evaluation.predictions)
        )
        self.next(self.quality_gate)

    @resources(cpu=0.5, memory=512)
    @step
    def quality_gate(self) -> None:
        """Fail the run (publishing nothing) when the test score misses the configured bound."""
        from src.training.quality_gate import enforce_quality_gate

        with reported():
            enforce_quality_gate(self.gate)
        self.gate_passed = True
        print(f"quality gate: {self.gate.message}")
        self.next(self.publish)

    @resources(cpu=0.5, memory=1024)
    @step
    def publish(self) -> None:
        """Publish the artifact atomically under output_dir (unless publish_local is false)."""
        from src.training.metadata import summary_lines
        from src.training.publish import publish_artifact
        from src.training.signing import resolve_signing_key

        self.published_path = None
        self.published_metadata = None
        if not self.publish_local:
            lines = [
                "publish_local is false: nothing was written. Publish this run with: "
                f"python -m src.training.publish_run {current.flow_name}/{current.run_id}"
            ]
        else:
            with reported():
                key, message = resolve_signing_key()
                if message:
                    print(message)
                cfg = self._cfg()
                published = publish_artifact(
                    cfg.output_dir,
                    self.metadata,
                    self.model_joblib,
                    self.onnx_model,
                    key,
                    alias=cfg.publish_alias,
                )
            self.published_path = str(published.directory)
            self.published_metadata = published.metadata
            lines = summary_lines(published.metadata, self.published_path)
        self.summary = lines
        record_summary(lines)
        self.next(self.end)

    @resources(cpu=0.5, memory=512)
    @step
    def end(self) -> None:
        """Say where the artifact is and its test metrics."""
        for line in self.summary:
            print(line)


if __name__ == "__main__":  # pragma: no cover - use run_training_workflow.py
    TrainingWorkflow()

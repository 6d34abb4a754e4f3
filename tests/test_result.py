"""One result model: what the pipeline writes is what the leaderboard reads (schema 2; version 1 still read)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydantic
import pytest

from dbench.errors import ConfigError
from dbench.evaluation.result import (
    SCHEMA_VERSION,
    EvaluationResult,
    read_result,
    score_problem,
    validate_result,
)
from dbench.leaderboard import build

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "leaderboard" / "results").glob("*.json"))


def test_the_leaderboard_reads_with_the_pipeline_s_model():
    assert build.validate_result is validate_result and build.score_problem is score_problem  # one model, one check
    assert build.LoadedResult.__annotations__["result"] in ("EvaluationResult", EvaluationResult)


@pytest.mark.skipif(not COMMITTED, reason="no committed result files in this checkout")
@pytest.mark.parametrize("path", COMMITTED, ids=[p.name for p in COMMITTED])
def test_committed_version_1_files_read_and_write_back_unchanged(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema_version"] == 1 and SCHEMA_VERSION == 2
    assert read_result(path).to_dict() == data


def _minimal(**changes):
    data = {
        "protocol": {"name": "p", "version": 1, "hash": "a" * 64, "resolved": {}},
        "encoder": {"name": "e", "fingerprint": "sha256:x", "spec": "e.py"},
        "dataset": "dsprites", "representation": "mean", "seeds": [0], "backend": "numpy",
        "scores": {"mig": {"mig": 0.5}}, "n_encoded": 10, "status": "ok",
    }
    data.update(changes)
    return data


def test_defaults_of_the_writer_and_what_a_file_must_say(tmp_path):
    result = EvaluationResult(**_minimal(metric_params={"downstream_task": {"n_train": (10, np.int64(100))}}))
    assert result.schema_version == SCHEMA_VERSION and result.dbench_version
    assert result.metric_params == {"downstream_task": {"n_train": [10, 100]}}  # plain JSON data
    written = json.loads(result.write(tmp_path / "r.json").read_text())
    assert "base_hash" not in written["protocol"]  # only for a protocol changed by overrides
    assert read_result(tmp_path / "r.json") == result
    for key in ("schema_version", "dbench_version"):
        incomplete = dict(written)
        del incomplete[key]
        with pytest.raises(ConfigError, match=f"^f.json: {key}: Field required$"):
            validate_result(incomplete, "f.json")


def test_version_1_files_stay_version_1_and_version_2_adds_provenance(tmp_path):
    old = validate_result({**_minimal(), "schema_version": 1, "dbench_version": "0.1.0"}, "old.json")
    assert old.schema_version == 1 and old.provenance is None
    written = json.loads(old.write(tmp_path / "old.json").read_text())
    assert written["schema_version"] == 1 and not {"provenance", "spread", "notes"} & set(written)
    with pytest.raises(ConfigError, match=r"old.json: <top level>: provenance, spread and notes need schema_version 2"):
        validate_result({**_minimal(), "schema_version": 1, "dbench_version": "0.1.0", "notes": ["x"]}, "old.json")
    with pytest.raises(ConfigError, match="schema_version: 3 is not supported; this dbench reads versions 1, 2"):
        validate_result({**_minimal(), "schema_version": 3, "dbench_version": "9"}, "new.json")
    new = EvaluationResult(**_minimal(provenance={"created_utc": "2025-01-01T00:00:00Z", "invocation": "dbench evaluate e.py"},
                                      spread={"scores_std": "over seeds"}, notes=["a caveat"]))
    data = json.loads(new.write(tmp_path / "new.json").read_text())
    assert data["schema_version"] == 2 and data["provenance"]["invocation"] == "dbench evaluate e.py"
    assert read_result(tmp_path / "new.json") == new


def test_artifacts_stay_in_memory():
    result = EvaluationResult(**_minimal()).with_artifacts({"dci": {"importance": np.eye(2)}})
    assert result.artifacts["dci"]["importance"].shape == (2, 2)
    assert "artifacts" not in result.to_dict()
    copy = result.model_copy(update={"baseline": True})
    assert copy.baseline and copy.artifacts is not None and "dci" in copy.artifacts
    with pytest.raises(ConfigError, match=r"r.json: artifacts: unknown key"):
        validate_result({**result.to_dict(), "artifacts": {}}, "r.json")


def test_the_model_is_frozen():
    result = EvaluationResult(**_minimal())
    with pytest.raises(pydantic.ValidationError):
        result.status = "failed"  # type: ignore[misc]

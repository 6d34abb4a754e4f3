"""Hand-made result files for the leaderboard tests (valid under schema_version 1)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from dbench.protocols import hash_resolved

RANKING = ["factor_vae.eval_accuracy", "dci.disentanglement", "mig.mig"]

#: The scorer key the leaderboard tests sign with (set as DBENCH_SCORER_KEY by their fixtures).
TEST_KEY = "test-scorer-key-" + "0123456789abcdef" * 2

RESOLVED = {
    "name": "challenge",
    "version": 1,
    "description": "test protocol",
    "datasets": ["dsprites"],
    "representation": ["mean"],
    "seeds": [0],
    "backend": "auto",
    "batch_size": 64,
    "metrics": {
        "factor_vae": {"batch_size": 64, "n_train": 10000},
        "dci": {"n_train": 10000, "n_test": 5000},
        "mig": {"n_train": 10000, "n_bins": 20},
    },
    "aggregate": None,
    "ranking": RANKING,
}


def resolved(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(RESOLVED)
    out.update(changes)
    return out


def result(
    name: str,
    scores: tuple[float, float, float],
    *,
    team: str | None = None,
    baseline: bool = False,
    stds: tuple[float, float, float] | None = None,
    protocol: dict[str, Any] | None = None,
    status: str = "ok",
    code_url: str = "",
) -> dict[str, Any]:
    """A result dict scoring ``scores`` on RANKING (with ``stds``: a three-seed result)."""
    proto = copy.deepcopy(protocol or RESOLVED)
    seeds = [0, 1, 2] if stds else list(proto["seeds"])
    table: dict[str, dict[str, float]] = {}
    for column, value in zip(RANKING, scores, strict=True):
        metric, key = column.split(".")
        table.setdefault(metric, {})[key] = value
    data: dict[str, Any] = {
        "schema_version": 1,
        "dbench_version": "0.1.0",
        "protocol": {"name": proto["name"], "version": proto["version"], "hash": hash_resolved(proto),
                     "resolved": proto},
        "encoder": {"name": f"{name}-encoder", "fingerprint": "ab" * 32, "spec": f"{name}.pt"},
        "submission": None if baseline else {"name": name, "team": team or name, "description": "",
                                             "code_url": code_url},
        "dataset": "dsprites",
        "representation": "mean",
        "seeds": seeds,
        "backend": "numpy",
        "environment": {"python": "3.11"},
        "metric_params": {m: copy.deepcopy(proto["metrics"][m]) for m in table},
        "scores": table if status != "failed" else {},
        "scores_std": None,
        "per_seed": None,
        "seconds": {"total": 1.5},
        "n_encoded": 1000,
        "errors": {},
        "status": status,
        "error": "encoder raised RuntimeError" if status == "failed" else None,
        "baseline": baseline,
    }
    if baseline:
        data["encoder"]["name"] = name
    if stds:
        data["scores_std"] = {m: {k: s for k in keys} for (m, keys), s in zip(table.items(), stds, strict=True)}
        data["per_seed"] = [{"seed": s, "scores": table} for s in seeds]
        data["protocol"]["resolved"] = dict(proto, seeds=seeds, aggregate="mean_std")
        data["protocol"]["hash"] = hash_resolved(data["protocol"]["resolved"])
    return data


def write_results(folder: Path, results: list[dict[str, Any]], *, sign: bool = True) -> list[Path]:
    """Write results as ``NNN-name.json`` (file order is submission order), signed with TEST_KEY unless ``sign=False``."""
    from dbench.submissions.signing import signature_path, signature_text

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, data in enumerate(results):
        name = (data.get("submission") or {}).get("name") or data.get("encoder", {}).get("name", "result")
        path = folder / f"{i:03d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)[:40]}.json"
        text = json.dumps(data, indent=2)
        path.write_text(text, encoding="utf-8")
        if sign:
            signature_path(path).write_text(signature_text(text.encode("utf-8"), TEST_KEY.encode()), encoding="utf-8")
        paths.append(path)
    return paths


def demo_results() -> list[dict[str, Any]]:
    """A small board: two teams with two entries each, one single entry, two baselines, one failure."""
    return [
        result("ada-v1", (0.70, 0.30, 0.10), team="ada"),
        result("beta-vae", (0.65, 0.20, 0.08), baseline=True),
        result("bob-v1", (0.80, 0.45, 0.20), team="bob", code_url="https://example.org/bob"),
        result("ada-v2", (0.90, 0.50, 0.15), team="ada"),
        result("factor-vae", (0.75, 0.35, 0.12), baseline=True),
        result("bob-v2", (0.60, 0.10, 0.05), team="bob"),
        result("carol", (0.85, 0.40, 0.25), team="carol <script>alert(1)</script>"),
        result("dave", (0.0, 0.0, 0.0), team="dave", status="failed"),
    ]

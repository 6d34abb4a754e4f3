"""``dbench aggregate``: the tidy table, the summary over seeds, the study plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from study_data import DATASET, METRICS, PARAMS, write_encoders

import dbench
from dbench._cli.main import main
from dbench.studies.aggregate import BASE_COLUMNS, collect
from dbench.studies.plots import variance_shares, write_study_plots
from dbench.studies.summary import summarise, wide_tables

SEEDS = [3, 4]
N_KEYS = 4  # mig.mig, sap.sap, beta_vae.train_accuracy, beta_vae.eval_accuracy


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("aggregate")
    paths = write_encoders(root / "encoders", 3, log=root / "calls.log")
    lines = ["encoders:"]
    for i, path in enumerate(paths):
        lines += [f"  - path: {path}", f"    meta: {{family: projection, width: {4 + i}, seed: {i}}}"]
    lines += [f"datasets: [{DATASET}]", "representations: [mean]", f"seeds: {SEEDS}", f"metrics: {METRICS}",
              f"set: {json.dumps(PARAMS)}"]
    (root / "study.yaml").write_text("\n".join(lines) + "\n")
    out = root / "sweep"
    assert main(["sweep", "--file", str(root / "study.yaml"), "--out", str(out), "--no-progress"]) == 0
    return out


def test_one_row_per_encoder_seed_and_score_with_the_metadata(sweep: Path) -> None:
    frame = dbench.aggregate(sweep)
    assert len(frame) == 3 * len(SEEDS) * N_KEYS
    # 'seed' is a base column, so the encoders' own 'seed' metadata becomes meta_seed.
    assert list(frame.columns) == [*BASE_COLUMNS, "family", "width", "meta_seed"]
    assert set(frame["seed"]) == set(SEEDS)
    assert sorted(frame.drop_duplicates("encoder")["width"]) == [4, 5, 6]
    assert frame["setup_hash"].nunique() == 1 and frame["protocol_hash"].nunique() == len(SEEDS)
    # Means over seeds equal the means of the per-job scores in the result files.
    per_job: dict[tuple[str, str], list[float]] = {}
    for path in (sweep / "results").rglob("*.json"):
        data = json.loads(path.read_text())
        for metric, keys in data["scores"].items():
            for key, value in keys.items():
                per_job.setdefault((data["encoder"]["name"], f"{metric}.{key}"), []).append(value)
    means = frame.groupby(["encoder", "score_name"])["score"].mean()
    assert len(means) == len(per_job)
    for (encoder, score), values in per_job.items():
        assert means[(encoder, score)] == pytest.approx(float(np.mean(values)), abs=1e-15)


def test_the_summary_is_mean_std_and_t_interval_over_seeds(sweep: Path) -> None:
    collected = collect(sweep)
    summary = summarise(collected.frame, meta_columns=collected.meta_columns)
    assert len(summary) == 3 * N_KEYS and set(summary["n"]) == {len(SEEDS)}
    row = summary[(summary["encoder"] == "proj1") & (summary["score_name"] == "mig.mig")].iloc[0]
    values = collected.frame.query("encoder == 'proj1' and score_name == 'mig.mig'")["score"].to_numpy()
    assert row["mean"] == pytest.approx(values.mean())
    assert row["std"] == pytest.approx(values.std(ddof=1))
    half = 12.706204736174707 * values.std(ddof=1) / math.sqrt(2)  # t(0.975, 1)
    assert (row["ci95_low"], row["ci95_high"]) == pytest.approx((values.mean() - half, values.mean() + half))


def test_the_command_writes_tables_summaries_and_plots(sweep: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "agg"
    assert main(["aggregate", str(sweep), "--out", str(out), "--scores", "mig.mig", "sap.sap",
                 "beta_vae.eval_accuracy"]) == 0
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == ["plots/agreement-tiny_dsprites-mean.png",
                     "plots/distribution-tiny_dsprites-mean-beta_vae.eval_accuracy.png",
                     "plots/distribution-tiny_dsprites-mean-mig.mig.png",
                     "plots/distribution-tiny_dsprites-mean-sap.sap.png",
                     "scores.csv", "scores.parquet", "summary.csv", "summary.html", "summary.md"]
    table = pd.read_csv(out / "scores.csv")
    assert len(table) == 3 * len(SEEDS) * N_KEYS
    assert pd.read_parquet(out / "scores.parquet").shape == table.shape
    markdown = (out / "summary.md").read_text()
    assert "| encoder | dataset | representation | family | width | meta_seed | n | mig.mig | sap.sap |" not in markdown
    assert "n = number of metric seeds" in markdown and "Every row:" in markdown and "family = projection" in markdown
    assert "<table" in (out / "summary.html").read_text()
    assert "24 rows from 6 result files (0 failed evaluations)" in capsys.readouterr().out
    assert main(["aggregate", str(sweep), "--scores", "nope.nope", "--out", str(out)]) == 2


def test_files_that_are_not_results_are_refused_one_line_each_and_the_rest_aggregated(
        sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    (copy / "notes.json").write_text("{}")
    (copy / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (copy / "junk.json").write_bytes(b"\x00\xff")
    with pytest.warns(UserWarning, match="3 files under"):
        frame = dbench.aggregate(copy)
    assert len(frame) == 3 * len(SEEDS) * N_KEYS
    assert main(["aggregate", str(copy), "--no-plots"]) == 1
    err = capsys.readouterr().err
    assert err.count("refused: ") == 3 and all(len(line) < 300 for line in err.splitlines())
    assert main(["aggregate", str(tmp_path / "missing")]) == 2


def test_a_results_folder_of_dbench_evaluate_gets_its_metadata_from_the_results_provenance(
        sweep: Path, tmp_path: Path) -> None:
    # DIR/<encoder>/<protocol>/<dataset>-<representation>.json, as dbench evaluate --out DIR writes it; the
    # run folder is gone, but a schema-2 result keeps its training configuration in provenance.training.
    source = json.loads(next((sweep / "results").rglob("*.json")).read_text())
    config = {"model": "beta_vae", "seed": 7, "steps": 300, "dataset": "dsprites", "hparams": {"beta": 6.0}}
    source["provenance"]["training"] = {"config": config, "step": 300}
    target = tmp_path / "evaluated" / "beta_vae-run" / "quick+custom-0123abcd" / f"{DATASET}-mean.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(source))
    frame = dbench.aggregate(tmp_path / "evaluated")
    assert len(frame) == N_KEYS
    assert list(frame.columns) == [*BASE_COLUMNS, "model", "train_seed", "steps", "train_dataset", "beta"]
    assert set(frame["model"]) == {"beta_vae"} and set(frame["train_seed"]) == {7} and set(frame["beta"]) == {6.0}


# ------------------------------------------------------------------------------------------------
# Synthetic studies: known answers for the summary and the variance shares


def _study(rng: np.random.Generator, *, n_train_seeds: int = 3, n_metric_seeds: int = 2) -> tuple[pd.DataFrame, list[str]]:
    rows = []
    for model, betas in (("vae", [None]), ("beta_vae", [1.0, 4.0, 16.0])):
        for beta in betas:
            for train_seed in range(n_train_seeds):
                fingerprint = f"{model}-{beta}-{train_seed}"
                level = (0.3 if model == "beta_vae" else 0.1) + (0 if beta is None else 0.01 * beta)
                model_effect = level + 0.02 * rng.standard_normal()
                for seed in range(n_metric_seeds):
                    for score in ("mig.mig", "dci.disentanglement"):
                        value = model_effect + 0.005 * rng.standard_normal() + (0.1 if score.startswith("dci") else 0)
                        rows.append({"encoder": fingerprint, "fingerprint": fingerprint, "protocol": "quick",
                                     "setup_hash": "h", "dataset": "dsprites", "representation": "mean",
                                     "seed": seed, "score_name": score, "score": value, "model": model,
                                     "beta": beta, "train_seed": train_seed, "steps": 1000})
    return pd.DataFrame(rows), ["model", "beta", "train_seed", "steps"]


def test_config_level_summary_is_over_training_seeds_of_per_model_means() -> None:
    frame, meta = _study(np.random.default_rng(0))
    summary = summarise(frame, meta_columns=meta)
    assert set(summary["n"]) == {3}
    assert len(summary) == 4 * 2  # (vae, 3 betas) x 2 scores
    rows = frame.query("model == 'beta_vae' and beta == 4.0 and score_name == 'mig.mig'")
    per_model = rows.groupby("train_seed")["score"].mean()
    row = summary.query("model == 'beta_vae' and beta == 4.0 and score_name == 'mig.mig'").iloc[0]
    assert row["mean"] == pytest.approx(per_model.mean()) and row["std"] == pytest.approx(per_model.std(ddof=1))
    spread, interval, common = wide_tables(summary, ["mig.mig", "dci.disentanglement"])
    assert list(spread.columns) == ["model", "beta", "dataset", "representation", "n", "mig.mig", "dci.disentanglement"]
    assert common == {"steps": 1000, "protocol": "quick"}
    assert spread.iloc[0]["mig.mig"].count("±") == 1 and interval.iloc[0]["mig.mig"].startswith("[")


def test_variance_shares_are_nested_sums_of_squares_that_add_up_to_one() -> None:
    frame, meta = _study(np.random.default_rng(1))
    rows = frame[frame["score_name"] == "mig.mig"]
    shares = variance_shares(rows, meta)
    assert shares is not None and sum(shares.values()) == pytest.approx(1.0)
    # By hand: sums of squares of each level's means around the enclosing level's means.
    y = rows["score"]
    total = ((y - y.mean()) ** 2).sum()
    by_model = rows.groupby("model")["score"].transform("mean")
    assert shares["model"] == pytest.approx(((by_model - y.mean()) ** 2).sum() / total)
    by_encoder = rows.groupby("fingerprint")["score"].transform("mean")
    assert shares["metric_seed"] == pytest.approx(((y - by_encoder) ** 2).sum() / total)
    # The simulated model variant dominates; metric noise (0.005) is the smallest source.
    assert shares["model"] > 0.5 and shares["metric_seed"] < shares["train_seed"]
    assert variance_shares(rows.drop(columns="train_seed"), [m for m in meta if m != "train_seed"]) is None
    assert variance_shares(rows.assign(score=0.5), meta) is None


def test_study_plots_are_written_for_what_the_data_allow(tmp_path: Path) -> None:
    frame, meta = _study(np.random.default_rng(2))
    paths = write_study_plots(frame, tmp_path, scores=["mig.mig", "dci.disentanglement"], meta_columns=meta)
    assert sorted(p.name for p in paths) == [
        "agreement-dsprites-mean.png", "distribution-dsprites-mean-dci.disentanglement.png",
        "distribution-dsprites-mean-mig.mig.png", "variance-dsprites-mean.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)
    # Fewer than three encoders: no rank correlation to show.
    few = frame[frame["fingerprint"].isin(frame["fingerprint"].unique()[:2])]
    assert write_study_plots(few, tmp_path / "few", scores=["mig.mig", "dci.disentanglement"],
                             meta_columns=meta)[0].name.startswith("distribution")

"""The figures a reader of a paper's appendix sees: every score shown, titles and labels that say what is drawn.

Each figure is captured as it is closed, so its titles, tick labels and legends are checked directly.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from dbench.evaluation.result import EvaluationResult
from dbench.metrics import Scored
from dbench.results.plots import plot_scores, plotted_rows, write_plots

FACTORS = ["shape", "scale", "orientation", "pos_x", "pos_y"]


@pytest.fixture
def figures(monkeypatch):
    """Every figure closed while the test runs (the plotting code closes each after saving it)."""
    closed = []
    original = plt.close

    def keep(fig=None):
        if fig is not None and hasattr(fig, "axes"):
            closed.append(fig)
        return original(fig)

    monkeypatch.setattr(plt, "close", keep)
    return closed


def labels(ax, axis="y"):
    return [t.get_text() for t in (ax.get_yticklabels() if axis == "y" else ax.get_xticklabels())]


def result(**changes):
    shots = ("1", "5", "all")
    few_shot = {f"{probe}:{k}:mean_accuracy": 0.2 + 0.1 * i for probe in ("linear", "knn") for i, k in enumerate(shots)}
    few_shot |= {f"{key}:std": 0.01 for key in list(few_shot)}
    few_shot |= {f"linear:{k}:accuracy_factor_{j}": 0.3 for k in ("1", "5", "all") for j in range(5)}
    data = dict(
        protocol={"name": "quick", "version": 2, "hash": "a" * 64, "resolved": {}},
        encoder={"name": "my_vae", "fingerprint": "sha256:x", "spec": "my_vae.py"},
        dataset="dsprites", representation="sampled", seeds=[0], backend="numpy", n_encoded=10, status="ok",
        scores={
            "mig": {"mig": 0.4},
            "factor_vae": {"train_accuracy": 0.9, "eval_accuracy": 0.88, "num_active_dims": 7.0},
            "irs": {"irs": -0.25, "num_active_dims": 9.0},
            "unsupervised": {"gaussian_total_correlation": 3.5, "mutual_info_score": 0.02,
                             "gaussian_wasserstein_correlation": 12.0, "gaussian_wasserstein_correlation_norm": 0.3},
            "few_shot": few_shot,
        },
        metric_params={"few_shot": {"n_draws": 3}},
    )
    data.update(changes)
    return EvaluationResult(**data)


def test_scores_png_shows_every_score_with_its_own_scale(tmp_path, figures):
    panels, left_out = plotted_rows(result())
    unit = {f"{m}.{k}" for m, k, *_ in panels["unit"]}
    counts = {f"{m}.{k}" for m, k, *_ in panels["count"]}
    other = {f"{m}.{k}" for m, k, *_ in panels["other"]}
    assert {"mig.mig", "factor_vae.eval_accuracy", "few_shot.linear:5:mean_accuracy", "few_shot.knn:all:mean_accuracy"} <= unit
    assert counts == {"factor_vae.num_active_dims", "irs.num_active_dims"}
    # A negative IRS and unbounded correlations are drawn on their own axis, not dropped.
    assert {"irs.irs", "unsupervised.gaussian_total_correlation", "unsupervised.gaussian_wasserstein_correlation"} <= other
    assert left_out == 0
    path = plot_scores(result(), tmp_path / "scores.png")
    assert path.stat().st_size > 10_000
    (fig,) = figures
    assert fig._suptitle.get_text() == "my_vae on dsprites\nsampled representation, protocol quick v2, seed 0"
    unit_ax, _, other_ax = fig.axes  # unit, count and other panels
    assert unit_ax.get_xlim()[1] > 1.0 and "few_shot.knn:1:mean_accuracy" in labels(unit_ax)
    assert other_ax.get_xlim()[0] < -0.25 and other_ax.get_xlim()[1] > 12.0  # every value inside its axis
    footnotes = [t.get_text() for t in fig.texts]
    assert any("training-set draws" in t for t in footnotes)  # what the error bars are


def test_several_seeds_are_named_and_the_error_bars_explained(tmp_path, figures):
    multi = result(seeds=[0, 1, 2], scores={"mig": {"mig": 0.4}}, scores_std={"mig": {"mig": 0.05}},
                   per_seed=[{"seed": s, "scores": {"mig": {"mig": 0.4}}} for s in (0, 1, 2)])
    plot_scores(multi, tmp_path / "scores.png")
    (fig,) = figures
    assert fig._suptitle.get_text().endswith("seeds 0, 1, 2")
    assert any("over the 3 metric seeds 0, 1, 2" in t.get_text() for t in fig.texts)


def test_no_scores_means_no_empty_scores_png(tmp_path):
    failed = result(scores={}, status="failed", errors={"mig": "boom"})
    assert plot_scores(failed, tmp_path / "scores.png") is None
    assert write_plots(failed, tmp_path) == [] and not (tmp_path / "scores.png").exists()


def test_probe_curves_name_the_factors_and_keep_the_legend_off_the_data(tmp_path, figures):
    from dbench.probes.plots import plot_downstream, plot_few_shot

    downstream = {f"logistic_regression_cv:{n}:{what}": 0.5 for n in (10, 100) for what in
                  ["mean_test_accuracy"] + [f"test_accuracy_factor_{i}" for i in range(5)]}
    assert plot_downstream(Scored(downstream, {"factor_names": FACTORS}), tmp_path).name == "downstream_task.png"
    few = result().scores["few_shot"]
    assert plot_few_shot(Scored(few, {"factor_names": FACTORS, "n_pool": 5000, "seed": 0}), tmp_path).name == "few_shot.png"
    for fig in figures:
        legend = fig.axes[-1].get_legend()
        assert [t.get_text() for t in legend.get_texts()][:5] == FACTORS
        # The legend sits right of the last panel, so it covers no curve.
        assert legend.get_window_extent().x0 >= fig.axes[-1].get_window_extent().x1
    _, linear = figures[1].axes  # knn, linear
    assert labels(linear, "x") == ["1", "5", "all\n(5,000 pool)"] and linear.get_title() == "few-shot linear probe (seed 0)"


def test_dci_plot_names_latents_and_factors_and_says_its_seed(tmp_path, figures):
    from dbench.plots.dci import plot_dci

    importance = np.eye(4, 5) * 0.8
    scored = Scored({"disentanglement": 0.91, "completeness": 0.8},
                    {"importance": importance, "factor_names": FACTORS, "seed": 3})
    plot_dci(scored, tmp_path)
    ax = figures[0].axes[0]
    assert labels(ax) == ["z0", "z1", "z2", "z3"] and labels(ax, "x") == FACTORS
    assert ax.get_title() == "DCI importance matrix (seed 3)\ndisentanglement 0.910, completeness 0.800"
    assert sum(t.get_text() == "0.80" for t in ax.texts) == 4  # cells carry their values


def test_write_plots_draws_the_first_seed_s_arrays_with_its_scores(tmp_path, figures):
    per_seed = [{"seed": s, "scores": {"dci": {"disentanglement": d, "completeness": 0.5}}} for s, d in ((4, 0.6), (5, 0.8))]
    multi = result(seeds=[4, 5], scores={"dci": {"disentanglement": 0.7, "completeness": 0.5}},
                   scores_std={"dci": {"disentanglement": 0.14, "completeness": 0.0}}, per_seed=per_seed)
    multi = multi.with_artifacts({"dci": {"importance": np.eye(3, 5), "factor_names": FACTORS}})
    names = [p.name for p in write_plots(multi, tmp_path)]
    assert names == ["scores.png", "dci_importance.png"]
    assert figures[1].axes[0].get_title().startswith("DCI importance matrix (seed 4)\ndisentanglement 0.600")


def test_traversal_labels_latents_values_and_marks_the_seed_images(tmp_path, figures):
    pytest.importorskip("torch")
    from reference_models.plots import write_traversal
    from reference_models.training import train

    run = tmp_path / "run"
    train("vae", dataset="tiny_dsprites", steps=0, seed=0, out_dir=run, progress=False)
    path = write_traversal(run, tmp_path / "traversal.png", n_images=2, value_range=2.0, n_values=5)
    assert path.stat().st_size > 10_000
    (fig,) = figures
    assert fig._suptitle.get_text() == "run: vae on tiny_dsprites, latent traversals"
    first, second = fig.axes
    assert labels(first, "x") == ["seed", "-2", "-1", "+0", "+1", "+2"]
    rows = labels(first)
    assert len(rows) == 10 and rows[0].startswith("z0 (μ=") and rows[9].startswith("z9 (μ=")
    assert first.get_title(loc="left").startswith("seed image 1, dataset index ")
    assert second.get_title(loc="left").startswith("seed image 2")
    frames = [p for p in first.patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
    assert len(frames) == 1  # the seed image is framed in red


def test_traverse_on_a_file_says_it_needs_a_run_folder(tmp_path, capsys):
    pytest.importorskip("torch")
    from dbench._cli.main import main

    encoder = tmp_path / "enc.py"
    encoder.write_text("def encode(images):\n    return images.reshape(len(images), -1)[:, :3]\n")
    assert main(["traverse", str(encoder), "--out", str(tmp_path / "t.png")]) == 2
    err = capsys.readouterr().err
    assert "is not a run folder" in err and "dbench train" in err and "Errno" not in err

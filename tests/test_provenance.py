"""What a result records to be cited: time, call, versions, hardware, encoder file, a run's training."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dbench.evaluation import provenance


def test_versions_come_from_package_metadata_without_importing(tmp_path):
    code = ("import sys; from dbench.evaluation.provenance import environment_info; info = environment_info(); "
            "print(sorted(m for m in ('torch', 'sklearn', 'numba', 'cupy') if m in sys.modules)); "
            "print(info['versions']['torch'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    imported, torch_version = done.stdout.split("\n")[:2]
    assert imported == "[]"  # recording versions imports none of them
    from importlib import metadata

    assert torch_version == metadata.version("torch")
    versions = provenance.package_versions()
    assert {"python", "dbench", "numpy", "scipy", "scikit-learn", "numba", "torch"} <= set(versions)


def test_gpu_models_from_the_driver_or_nvidia_smi(tmp_path, monkeypatch):
    card = tmp_path / "0000:01:00.0"
    card.mkdir()
    (card / "information").write_text("Model: \t\t NVIDIA H200\nIRQ:   42\n")
    assert provenance.gpu_models(tmp_path) == ("NVIDIA H200",)
    empty = tmp_path / "none"
    empty.mkdir()
    monkeypatch.setattr(provenance.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    listing = "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-1234)\nGPU 1: Tesla T4 (UUID: GPU-5)"
    monkeypatch.setattr(provenance, "_run", lambda cmd: listing)
    assert provenance.gpu_models(empty) == ("NVIDIA A100-SXM4-80GB", "Tesla T4")
    assert provenance.cpu_model()


def test_a_trained_run_folder_records_its_encoder_file_training_config_and_step(tmp_path):
    pytest.importorskip("torch")
    import dbench
    from reference_models.training import train

    run = tmp_path / "run"
    train("beta_vae", dataset="tiny_dsprites", steps=2, seed=3, out_dir=run, progress=False, checkpoint_every=1)
    result = dbench.evaluate(run, dataset="tiny_dsprites", metrics="mig", params={"mig": {"n_train": 100}},
                             backend="numpy")
    record = result.provenance
    assert record.encoder_file["path"] == str((run / "encoder.pt").resolve()) and len(record.encoder_file["sha256"]) == 64
    assert record.training["step"] == 2 and record.training["config"]["model"] == "beta_vae"
    assert record.training["config"]["seed"] == 3 and record.training["config"]["hparams"]["beta"]
    assert record.invocation.startswith(f"dbench.evaluate({str(run)!r}, dataset='tiny_dsprites'")
    assert result.to_dict()["provenance"]["created_utc"].endswith("Z")


def test_every_spread_is_explained_in_the_json_and_the_table():
    from toy_encoders import posterior

    import dbench
    from dbench.results import format_scores

    few = dbench.evaluate(posterior, dataset="tiny_dsprites", metrics="few_shot", backend="numpy",
                          params={"few_shot": {"n_pool": 400, "n_test": 100, "n_draws": 3, "shots": [1, 5]}})
    assert few.spread == {"few_shot.{probe}:{shots}:accuracy_factor_{i}:std":
                          "test accuracy on factor i, standard deviation over draws (ddof = 1)",
                          "few_shot.{probe}:{shots}:mean_accuracy:std":
                          "test accuracy averaged over classified factors, standard deviation over draws (ddof = 1)"}
    table = format_scores(few)
    assert "± (few_shot) = standard deviation (ddof=1) over the probe's 3 training-set draws, one metric seed" in table
    seeds = dbench.evaluate(posterior, dataset="tiny_dsprites", metrics="mig", seed=[0, 1, 2], backend="numpy",
                            params={"mig": {"n_train": 100}})
    assert seeds.spread == {"scores_std": "standard deviation (ddof=1) over the 3 metric seeds 0, 1, 2; each score is their mean"}
    assert "± = standard deviation (ddof=1) over the 3 metric seeds 0, 1, 2; scores are their means" in format_scores(seeds)


def test_procedural_dsprites_under_dlib_says_it_is_not_the_official_file():
    from dbench.evaluation.options import EvaluationOptions
    from dbench.evaluation.pipeline import resolve_config

    (mean, _) = resolve_config(EvaluationOptions(protocol="dlib"))
    (note,) = mean.notes
    assert note.startswith("dsprites is rendered procedurally: scores are comparable with the literature")
    assert "dsprites_official" in note and "dbench download dsprites" in note
    assert not resolve_config(EvaluationOptions(protocol="dlib", dataset="dsprites_official"))[0].notes
    assert not resolve_config(EvaluationOptions(protocol="quick"))[0].notes

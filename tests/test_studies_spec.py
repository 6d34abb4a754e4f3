"""Sweep files and the training grid: what is accepted, what is refused (one line, exit 2), run names."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dbench._cli.main import main
from dbench.errors import ConfigError, DbenchError
from dbench.studies.encoders import expand_entries, run_metadata
from dbench.studies.spec import MAX_DEPTH, MAX_FILE_BYTES, read_sweep_file
from dbench.studies.training import RunSpec, is_trained, runs_of


def test_a_sweep_file_takes_paths_relative_to_itself(tmp_path: Path) -> None:
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "b").mkdir()
    (tmp_path / "enc.py").write_text("def encode(x):\n    return x.reshape(len(x), -1)[:, :4]\n")
    (tmp_path / "my_protocol.yaml").write_text("name: x\n")
    sweep = tmp_path / "study.yaml"
    sweep.write_text(
        "encoders:\n  - runs/*/\n  - path: enc.py\n    meta: {family: crop, width: 4}\n"
        "protocols: [quick, my_protocol.yaml]\nseeds: [0, 1]\nset: {mig: {n_train: 500}}\n"
        "train:\n  out: trained\n  steps: 10\n  seeds: [0]\n  models: {vae: {}}\n"
    )
    spec = read_sweep_file(sweep)
    assert spec.protocols == ["quick", str(tmp_path / "my_protocol.yaml")]
    assert spec.train is not None and spec.train.out == str(tmp_path / "trained")
    sources = expand_entries(spec.entries())
    assert [s.path for s in sources] == [str(tmp_path / "runs" / "a"), str(tmp_path / "runs" / "b"),
                                         str(tmp_path / "enc.py")]
    assert sources[2].meta == {"family": "crop", "width": 4}
    assert [s.name for s in sources] == ["a", "b", "enc"]


HOSTILE = {
    "tag": ("encoders: !!python/object/apply:os.system [echo hi]\n", "YAML tags are not allowed"),
    "anchor": ("a: &x [1, 2]\nseeds: *x\n", "anchors and aliases are not allowed"),
    "deep": ("set: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n", "nested more than"),
    "very deep": ("set: " + "[" * 100_000 + "\n", "nested more than"),
    "unknown key": ("encoder: [a.py]\n", "encoder: unknown key; allowed: encoders, train, protocols"),
    "wrong type": ("seeds: [zero]\n", "seeds.0: Input should be a valid integer"),
    "negative seed": ("seeds: [-1]\n", "seeds.0: Input should be greater than or equal to 0"),
    "list": ("- a.py\n", "a sweep file must be a YAML mapping"),
    "duplicate": ("seeds: [0]\nseeds: [1]\n", "duplicate key 'seeds'"),
    "syntax": ("seeds: [0\n", "invalid YAML"),
    "bad representation": ("representations: [median]\n", "representations.0: Input should be 'mean' or 'sampled'"),
    "bad train key": ("train: {out: r, steps: 1, seeds: [0], models: {vae: {}}, device: cuda}\n",
                      "train.device: unknown key; allowed: out, steps, seeds, dataset, args, models"),
    "too many seeds": ("seeds: [" + ", ".join(["1"] * 10_001) + "]\n", "seeds: List should have at most 10000"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_bad_sweep_file_is_one_line_naming_the_file_and_the_problem(case: str, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    text, message = HOSTILE[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_sweep_file(path)
    line = str(info.value)
    assert "\n" not in line and line.startswith(str(path)) and message in line, line
    assert len(line) < 400
    assert main(["sweep", "--file", str(path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_oversized_binary_and_missing_sweep_files_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("seeds: [0]\n" + "#" * MAX_FILE_BYTES)
    with pytest.raises(ConfigError, match="byte limit"):
        read_sweep_file(big)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00seeds")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_sweep_file(binary)
    with pytest.raises(ConfigError, match="cannot read sweep file"):
        read_sweep_file(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not a file"):
        read_sweep_file(tmp_path)


def test_the_command_line_extends_and_overrides_the_sweep_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dbench.studies import engine

    seen = {}

    def record(spec, out, **options):  # type: ignore[no-untyped-def]
        seen["spec"] = spec
        return engine.SweepReport(out=Path(out))

    monkeypatch.setattr(engine, "run_sweep", record)
    (tmp_path / "a.py").write_text("")
    (tmp_path / "b.py").write_text("")
    sweep = tmp_path / "s.yaml"
    sweep.write_text("encoders: [a.py]\nseeds: [0]\nset: {mig: {n_train: 500, n_bins: 10}}\n")
    assert main(["sweep", "--file", str(sweep), str(tmp_path / "b.py"), "--seed", "3", "4", "--set", "mig.n_train=600",
                 "--out", str(tmp_path / "o")]) == 0
    spec = seen["spec"]
    assert [e.path for e in spec.entries()] == [str(tmp_path / "a.py"), str(tmp_path / "b.py")]
    assert spec.seeds == [3, 4]
    assert spec.set == {"mig": {"n_train": 600, "n_bins": 10}}


def test_the_train_grid_names_one_run_folder_per_model_value_and_seed(tmp_path: Path) -> None:
    from dbench.studies.spec import TrainGrid

    grid = TrainGrid(out=str(tmp_path), steps=100, seeds=[0, 1], args=["--threads", 1],
                     models={"vae": None, "beta_vae": {"beta": [1, 4.0, 0.5]},
                             "annealed_vae": {"c_max": [5, 25], "iteration_threshold": 33}})
    runs = runs_of(grid)
    names = [r.name for r in runs]
    assert names[:2] == ["vae-seed0", "vae-seed1"]
    assert "beta_vae-beta4-seed1" in names and "beta_vae-beta0.5-seed0" in names
    assert "annealed_vae-c_max25-iteration_threshold33-seed0" in names
    assert len(runs) == 2 + 3 * 2 + 2 * 2
    run = next(r for r in runs if r.name == "beta_vae-beta4-seed1")
    assert run.command() == ["train", "beta_vae", "--dataset", "dsprites", "--steps", "100", "--seed", "1", "--out",
                             str(tmp_path / "beta_vae-beta4-seed1"), "--no-progress", "--set", "beta=4", "--threads", "1"]
    assert not run.uses_gpu
    assert RunSpec("x", "o", "vae", 1, 0, "dsprites", args=("--device", "cuda")).uses_gpu


def test_a_run_folder_counts_as_trained_only_when_it_finished_the_requested_steps(tmp_path: Path) -> None:
    run = RunSpec("vae-seed0", str(tmp_path), "vae", 100, 0, "dsprites")
    assert not is_trained(run)
    config = {"model": "vae", "steps": 100, "finished": True, "seed": 0, "hparams": {}, "dataset": "dsprites"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert not is_trained(run)  # no encoder.pt yet
    (tmp_path / "encoder.pt").write_bytes(b"x")
    assert is_trained(run)
    for change in ({"finished": False}, {"steps": 50}, {"model": "beta_vae"}):
        (tmp_path / "config.json").write_text(json.dumps({**config, **change}))
        assert not is_trained(run), change
    (tmp_path / "config.json").write_text("{not json")
    assert not is_trained(run)


def test_run_metadata_come_from_config_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({
        "model": "beta_vae", "seed": 2, "steps": 300, "dataset": "dsprites", "batch_size": 64, "finished": True,
        "hparams": {"beta": 4.0}, "torch_version": "2.13", "device": "cpu"}))
    assert run_metadata(tmp_path) == {"model": "beta_vae", "train_seed": 2, "steps": 300, "train_dataset": "dsprites",
                                      "train_batch_size": 64, "finished": True, "beta": 4.0}
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(DbenchError, match="not a JSON object"):
        run_metadata(tmp_path)
    warned: list[str] = []
    sources = expand_entries([_entry(str(tmp_path))], warn=warned.append)
    assert sources[0].meta == {} and "evaluated without its metadata" in warned[0]
    assert run_metadata(tmp_path / "missing") == {}


def _entry(path: str):  # type: ignore[no-untyped-def]
    from dbench.studies.spec import EncoderEntry

    return EncoderEntry(path=path)


@pytest.mark.slow
def test_a_train_grid_trains_then_evaluates_and_a_rerun_trains_nothing(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    sweep = tmp_path / "study.yaml"
    sweep.write_text(
        "train:\n  out: runs\n  steps: 2\n  seeds: [0]\n  args: [--batch-size, 8, --threads, 1]\n"
        "  models: {vae: {}, beta_vae: {beta: [2]}}\n"
        "protocols: [quick]\ndatasets: [tiny_dsprites]\nmetrics: [mig]\nseeds: [0]\nset: {mig: {n_train: 200}}\n"
    )
    out = tmp_path / "sweep"
    assert main(["sweep", "--file", str(sweep), "--out", str(out), "--no-progress"]) == 0
    assert "trainings: 2 of 2 trained now" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "runs")) == ["beta_vae-beta2-seed0", "vae-seed0"]
    assert "trained vae for 2 steps" in (tmp_path / "runs" / "vae-seed0" / "train.log").read_text()
    import dbench

    frame = dbench.aggregate(out)
    assert sorted(frame["model"].unique()) == ["beta_vae", "vae"]
    assert set(frame["train_seed"]) == {0} and set(frame["steps"]) == {2}
    assert frame.loc[frame["model"] == "beta_vae", "beta"].tolist() == [2.0]
    assert main(["sweep", "--file", str(sweep), "--out", str(out), "--no-progress"]) == 0
    assert "2 jobs: 0 run now" in capsys.readouterr().out


def test_a_failing_training_is_recorded_and_retried_only_on_request(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / "study.yaml"
    # An unknown hyperparameter: dbench train refuses it at once, without importing torch's training loop.
    sweep.write_text("train:\n  out: runs\n  steps: 2\n  seeds: [0]\n  models: {vae: {beta: [2]}}\n"
                     "protocols: [quick]\ndatasets: [tiny_dsprites]\nmetrics: [mig]\n")
    out = tmp_path / "sweep"
    assert main(["sweep", "--file", str(sweep), "--out", str(out), "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "training vae-beta2-seed0: failed: training vae-beta2-seed0 failed (exit status 2)" in captured.err
    assert "unknown hyperparameter 'beta'" in captured.err
    assert (out / "training" / "vae-beta2-seed0.failed.yaml").is_file()
    assert main(["sweep", "--file", str(sweep), "--out", str(out), "--no-progress"]) == 1
    assert "failed before" in capsys.readouterr().err


def test_progress_lines_count_jobs_and_trainings_and_say_what_the_eta_covers(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import time

    from dbench._progress import LOG_INTERVAL_ENV as INTERVAL_ENV
    from dbench.studies.progress import SweepProgress

    monkeypatch.setenv(INTERVAL_ENV, "0.05")
    stream = io.StringIO()
    progress = SweepProgress(4, stream=stream, trainings=2)  # not a terminal: periodic lines
    progress.job_finished(failed=False)
    progress.job_finished(failed=True)
    progress.training_finished()
    time.sleep(0.3)
    progress.close()
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("dbench sweep: 2 of 4 jobs finished (1 failed), 2 remaining; 1 of 2 trainings done "
                           "(the jobs of 1 more model to come); ")
    assert last.endswith("left for the jobs known so far") and len(stream.getvalue().splitlines()) >= 2
    quiet = io.StringIO()
    SweepProgress(3, stream=quiet, enabled=False).close()
    assert quiet.getvalue() == ""

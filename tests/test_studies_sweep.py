"""``dbench sweep``: jobs, keys, encode-once, equality with ``dbench evaluate``, executors, resume, failures."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from study_data import (
    DATASET,
    METRICS,
    PARAMS,
    calling_processes,
    calls,
    comparable,
    set_args,
    sweep_args,
    write_encoder,
    write_encoders,
)

from dbench._cli.main import main
from dbench.errors import ConfigError
from dbench.evaluation.result import read_result
from dbench.studies.jobs import Job, job_configs, job_key
from dbench.studies.layout import SweepFolder
from dbench.studies.spec import SweepSpec

ROOT = Path(__file__).resolve().parents[1]
N_ENCODERS = 6
SEEDS = (1, 2)
REPRESENTATIONS = ("mean", "sampled")
N_JOBS = N_ENCODERS * len(SEEDS) * len(REPRESENTATIONS)


def _spec() -> SweepSpec:
    return SweepSpec(protocols=["quick"], datasets=[DATASET], representations=list(REPRESENTATIONS),
                     seeds=list(SEEDS), metrics=METRICS, set=PARAMS)


def _results(folder: Path) -> dict[str, dict]:
    """Result file path (relative) -> its JSON, for every result file of a sweep folder."""
    return {p.relative_to(folder).as_posix(): json.loads(p.read_text())
            for p in sorted((folder / "results").rglob("*.json"))}


def _sweep(paths: list[Path], out: Path, *extra: str, seeds: tuple[int, ...] = SEEDS) -> int:
    return main(["sweep", *map(str, paths), *sweep_args(seeds=seeds, representations=REPRESENTATIONS),
                 "--out", str(out), *extra])


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    folder = tmp_path_factory.mktemp("encoders")
    log = folder / "calls.log"
    return write_encoders(folder, N_ENCODERS, log=log), log


@pytest.fixture(scope="module")
def serial_sweep(encoders: tuple[list[Path], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    paths, _ = encoders
    out = tmp_path_factory.mktemp("sweep") / "serial"
    assert _sweep(paths, out, "--executor", "serial") == 0
    return out


# ------------------------------------------------------------------------------------------------
# Keys and layout


def test_every_job_has_one_result_at_the_path_of_its_key(serial_sweep: Path, encoders: tuple[list[Path], Path]) -> None:
    from dbench.studies.encoders import encoder_fingerprint
    from dbench.studies.jobs import EncoderRef

    results = _results(serial_sweep)
    assert len(results) == N_JOBS
    folder = SweepFolder(serial_sweep)
    expected = set()
    for path in encoders[0]:
        ref = EncoderRef(str(path), path.stem, encoder_fingerprint(path))
        for config in job_configs(_spec()):
            job = Job(ref, config)
            expected.add(folder.result_path(job.key).relative_to(serial_sweep).as_posix())
            assert folder.state(job) == "ok"
    assert set(results) == expected
    for name, data in results.items():
        assert data["status"] == "ok"
        assert len(data["seeds"]) == 1 and data["seeds"][0] in SEEDS
        assert Path(name).stem == job_key(data["encoder"]["fingerprint"], next(
            c for c in job_configs(_spec()) if c.record_hash == data["protocol"]["hash"]
            and c.representation == data["representation"]))


def test_job_keys_are_deterministic_and_change_with_what_changes_a_number() -> None:
    configs = job_configs(_spec())
    again = job_configs(_spec())
    assert [job_key("sha256:a", c) for c in configs] == [job_key("sha256:a", c) for c in again]
    assert len({job_key("sha256:a", c) for c in configs}) == len(configs) == len(SEEDS) * len(REPRESENTATIONS)
    assert {job_key("sha256:a", c) for c in configs}.isdisjoint({job_key("sha256:b", c) for c in configs})
    changed = job_configs(_spec().model_copy(update={"set": {**PARAMS, "mig": {"n_train": 301}}}))
    assert {job_key("sha256:a", c) for c in configs}.isdisjoint({job_key("sha256:a", c) for c in changed})
    # Without --seed, one job per (dataset, representation) runs the protocol's own seeds.
    # It follows the protocol itself on the protocol's own datasets; another dataset derives a protocol.
    own = job_configs(SweepSpec(protocols=["quick"]))
    assert [(c.seed, c.seeds, c.record["name"], c.dataset) for c in own] == [(None, (0,), "quick", "dsprites")]
    other = job_configs(SweepSpec(protocols=["quick"], datasets=[DATASET]))
    assert [(c.seed, c.seeds, c.record["name"]) for c in other] == [(None, (0,), "quick+custom")]


def test_limit_scales_every_sample_size_as_dbench_evaluate_does(tmp_path: Path) -> None:
    from dbench.evaluation.options import EvaluationOptions
    from dbench.evaluation.pipeline import resolve_config

    (config,) = job_configs(SweepSpec(protocols=["quick"], metrics=["mig"], seeds=[0], limit=0.5))
    (expected,) = resolve_config(EvaluationOptions(protocol="quick", metrics=["mig"], seed=0, limit=0.5))
    assert config.record == expected.protocol and config.metric_params == expected.metrics
    assert config.record["resolved"]["limit"] == 0.5 and config.options().limit == 0.5
    with pytest.raises(ConfigError, match="limit"):
        from dbench.studies.spec import spec_from_dict

        spec_from_dict({"limit": 2})


def test_each_encoder_encodes_its_observations_once_for_all_seeds_and_representations(
        serial_sweep: Path, encoders: tuple[list[Path], Path]) -> None:
    from dbench.datasets import get_dataset
    from dbench.evaluation.pipeline import plan_config, query_indices, resolve_config

    ds = get_dataset(DATASET)
    union = np.unique(np.concatenate([
        query_indices(plan_config(resolve_config(c.options())[0], ds)) for c in job_configs(_spec())]))
    logged = calls(encoders[1])
    assert sorted(logged) == [f"proj{i}" for i in range(N_ENCODERS)]
    for name, sizes in logged.items():
        # One pass over the union of the four jobs' observations, in batches of the protocol's 256.
        assert sum(sizes) == union.size, name
        assert len(sizes) == math.ceil(union.size / 256), name
    # Each result credits the observations its own plans used, as dbench evaluate would have encoded.
    for data in _results(serial_sweep).values():
        assert 0 < data["n_encoded"] <= union.size


def test_scores_equal_dbench_evaluate_of_the_same_encoder_seed_and_representation(
        serial_sweep: Path, encoders: tuple[list[Path], Path], tmp_path: Path) -> None:
    by_job = {(d["encoder"]["name"], d["representation"], d["seeds"][0]): d for d in _results(serial_sweep).values()}
    chosen = [(p, "mean", 1) for p in encoders[0]] + [(encoders[0][0], rep, seed) for rep in REPRESENTATIONS
                                                       for seed in SEEDS]
    for path, representation, seed in chosen:
        out = tmp_path / f"{path.stem}-{representation}-{seed}.json"
        status = main(["evaluate", str(path), "--dataset", DATASET, "--representation", representation,
                       "--seed", str(seed), "--metrics", *METRICS, *set_args(), "--out", str(out), "--no-progress"])
        assert status == 0
        alone = json.loads(out.read_text())
        swept = by_job[(path.stem, representation, seed)]
        assert swept["scores"] == alone["scores"]
        assert swept["protocol"] == alone["protocol"]
        assert swept["encoder"]["fingerprint"] == alone["encoder"]["fingerprint"]
        assert swept["n_encoded"] == alone["n_encoded"]
        assert swept["metric_params"] == alone["metric_params"]


@pytest.mark.slow
def test_processes_and_dask_give_the_serial_results(serial_sweep: Path, encoders: tuple[list[Path], Path],
                                                    tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    expected = {k: comparable(v) for k, v in _results(serial_sweep).items()}
    for executor in ("processes", "dask"):
        out = tmp_path / executor
        logged = len(encoders[1].read_text().splitlines())
        assert _sweep(encoders[0], out, "--executor", executor, "--workers", "2") == 0
        # The encoders ran in two worker processes, none in the client.
        pids = calling_processes(encoders[1], skip=logged)
        assert len(pids) == 2 and os.getpid() not in pids, (executor, pids)
        assert {k: comparable(v) for k, v in _results(out).items()} == expected, executor
        assert sorted(os.listdir(out / "encoders")) == sorted(os.listdir(serial_sweep / "encoders"))


def test_a_rerun_runs_nothing_and_calls_no_encoder(serial_sweep: Path, encoders: tuple[list[Path], Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    before = calls(encoders[1])
    files = _results(serial_sweep)
    assert _sweep(encoders[0], serial_sweep, "--executor", "serial") == 0
    assert f"{N_JOBS} jobs: 0 run now" in capsys.readouterr().out
    assert calls(encoders[1]) == before
    assert _results(serial_sweep) == files


def test_a_corrupt_or_misplaced_result_is_run_again(serial_sweep: Path, encoders: tuple[list[Path], Path],
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "copy"
    shutil.copytree(serial_sweep, out)
    paths = sorted((out / "results").rglob("*.json"))
    paths[0].write_text(paths[0].read_text()[:100])  # truncated
    shutil.copy(paths[2], paths[1])  # another job's result under this key
    expected = _results(serial_sweep)
    capsys.readouterr()
    assert _sweep(encoders[0], out, "--executor", "serial") == 0
    captured = capsys.readouterr()
    assert f"{N_JOBS} jobs: 2 run now (2 ok" in captured.out
    assert "not valid JSON" in captured.err and "holds another evaluation" in captured.err
    assert {k: comparable(v) for k, v in _results(out).items()} == {k: comparable(v) for k, v in expected.items()}


TINY_PROTOCOL = """\
name: tiny_study
version: 1
datasets: [tiny_dsprites]
representation: [mean, sampled]
seeds: [0, 1]
aggregate: mean_std
metrics:
  mig: {n_train: 300}
  sap: {n_train: 300, n_test: 100}
ranking: [mig.mig, sap.sap]
"""


def test_a_protocol_file_sweep_follows_the_protocol_and_the_leaderboard_builds_from_it(
        encoders: tuple[list[Path], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    protocol = tmp_path / "tiny_study.yaml"
    protocol.write_text(TINY_PROTOCOL)
    out = tmp_path / "sweep"
    # No --seed: one job per (encoder, representation) runs the protocol's seeds, as the protocol says.
    assert main(["sweep", *map(str, encoders[0][:3]), "--protocol", str(protocol), "--out", str(out),
                 "--no-progress"]) == 0
    results = _results(out)
    assert len(results) == 3 * 2
    assert {d["protocol"]["name"] for d in results.values()} == {"tiny_study"}
    assert all(d["seeds"] == [0, 1] and len(d["per_seed"]) == 2 for d in results.values())
    capsys.readouterr()
    assert main(["leaderboard", "build", "--results", str(out), "--out", str(tmp_path / "board")]) == 0
    assert "6 ranked entries from 6 result files" in capsys.readouterr().out
    assert (tmp_path / "board" / "index.html").is_file()


# ------------------------------------------------------------------------------------------------
# Stopping and resuming


def _marked_processes(marker: str) -> list[int]:
    """Processes (any parent) whose environment carries ``marker``: what a sweep left running."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to find left-over processes")
def test_sigterm_stops_the_sweep_and_a_rerun_resumes_to_the_same_folder(tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    log = tmp_path / "calls.log"
    # Slow encoders (0.3 s a batch) so that SIGTERM arrives mid-way.
    paths = write_encoders(tmp_path / "encoders", N_ENCODERS, log=log, extra="time.sleep(0.3)")
    out = tmp_path / "stopped"
    marker = f"DBENCH_TEST_SWEEP={uuid.uuid4().hex}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           marker.split("=")[0]: marker.split("=")[1]}
    command = [sys.executable, "-m", "dbench", "sweep", *map(str, paths),
               *sweep_args(seeds=SEEDS, representations=REPRESENTATIONS), "--out", str(out),
               "--executor", "dask", "--workers", "2"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "results").rglob("*.json"))) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "rerun the same command to resume" in stderr
    finished = _results(out)
    assert 3 <= len(finished) < N_JOBS, "stop earlier: the sweep had finished before SIGTERM"
    assert all(read_result(out / name).status == "ok" for name in finished)
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    time.sleep(2)
    assert _marked_processes(marker) == [], "the stopped sweep left worker processes running"

    # The rerun calls no encoder whose jobs had all finished, and recomputes no finished job.
    done_by = {}
    for data in finished.values():
        done_by.setdefault(data["encoder"]["name"], 0)
        done_by[data["encoder"]["name"]] += 1
    complete = {name for name, n in done_by.items() if n == len(SEEDS) * len(REPRESENTATIONS)}
    before = calls(log)
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{N_JOBS - len(finished)} run now" in rerun.stdout and f"{len(finished)} done before" in rerun.stdout
    after = calls(log)
    for name in complete:
        assert after.get(name) == before.get(name), f"{name} was called again although its jobs had finished"
    resumed = _results(out)
    for name, data in finished.items():
        assert resumed[name] == data  # the very same file, not recomputed

    # The folder equals an uninterrupted run's.
    whole = tmp_path / "whole"
    assert main(["sweep", *map(str, paths), *sweep_args(seeds=SEEDS, representations=REPRESENTATIONS),
                 "--out", str(whole), "--executor", "serial"]) == 0
    assert {k: comparable(v) for k, v in resumed.items()} == {k: comparable(v) for k, v in _results(whole).items()}
    for name in ("sweep.yaml", *(f"encoders/{n}" for n in os.listdir(whole / "encoders"))):
        assert (out / name).read_bytes() == (whole / name).read_bytes(), name


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to find left-over processes")
def test_sigterm_stops_a_processes_sweep_with_busy_workers_at_once(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    # Encoders busy for a long time in every call: the workers are mid-task when SIGTERM arrives.
    paths = write_encoders(tmp_path / "encoders", 4, log=log, extra="time.sleep(60)")
    marker = f"DBENCH_TEST_SWEEP={uuid.uuid4().hex}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           marker.split("=")[0]: marker.split("=")[1]}
    command = [sys.executable, "-m", "dbench", "sweep", *map(str, paths), *sweep_args(seeds=(1,)),
               "--out", str(tmp_path / "out"), "--executor", "processes", "--workers", "2"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(calling_processes(log)) < 2 and process.poll() is None:
        time.sleep(0.05)
    busy = calling_processes(log)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert len(busy) == 2 and os.getpid() not in busy, (busy, stderr)
    assert process.returncode == 130, stderr
    assert "rerun the same command to resume" in stderr and "unexpected error" not in stderr
    time.sleep(1)
    assert _marked_processes(marker) == [], "the stopped sweep left worker processes running"


# ------------------------------------------------------------------------------------------------
# Failures


@pytest.mark.slow
def test_failing_encoders_are_recorded_and_the_others_go_on(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "calls.log"
    folder = tmp_path / "encoders"
    good = write_encoders(folder, 2, log=log)
    raises = write_encoder(folder, "raises", seed=7, log=log, extra="raise RuntimeError('boom')")
    exits = write_encoder(folder, "exits", seed=8, log=log, extra="os._exit(3)")
    broken = folder / "broken.py"
    broken.write_text("def get_encoder(:\n")
    empty_run = folder / "empty_run"
    empty_run.mkdir()
    paths = [*good, raises, exits, broken, empty_run]
    out = tmp_path / "sweep"
    assert _sweep(paths, out, "--executor", "processes", "--workers", "2") == 1
    captured = capsys.readouterr()
    results = {(d["encoder"]["name"], d["representation"], d["seeds"][0]): (name, d)
               for name, d in _results(out).items()}
    per_encoder = len(SEEDS) * len(REPRESENTATIONS)
    assert len(results) == len(paths) * per_encoder
    reasons = {"raises": "RuntimeError: boom", "exits": "worker process died", "broken": "SyntaxError",
               "empty_run": "has no encoder.pt"}
    for (encoder, _, _), (name, data) in results.items():
        if encoder in reasons:
            assert name.endswith(".failed.json") and data["status"] == "failed", name
            assert reasons[encoder] in data["error"] and "\n" not in data["error"]
            assert read_result(out / name).status == "failed"
        else:
            assert not name.endswith(".failed.json") and data["status"] == "ok"
    assert f"{4 * per_encoder} failed" in captured.out
    assert "dbench sweep: raises quick+custom tiny_dsprites/mean seed 1: failed: " in captured.err

    # Failed jobs stay failed until --retry-failed; then they are run again (and fail again).
    before = calls(log)
    assert _sweep(paths, out, "--executor", "processes", "--workers", "2") == 1
    assert "(rerun with --retry-failed to try them again)" in capsys.readouterr().out
    assert calls(log) == before
    assert _sweep(paths, out, "--executor", "processes", "--workers", "2", "--retry-failed") == 1
    assert f"{4 * per_encoder} failed" in capsys.readouterr().out
    assert len(calls(log)["raises"]) > len(before["raises"])
    assert calls(log)["proj0"] == before["proj0"]


def test_an_unknown_dataset_or_metric_is_a_usage_error_before_anything_runs(
        encoders: tuple[list[Path], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = calls(encoders[1])
    assert main(["sweep", str(encoders[0][0]), "--dataset", "nope", "--out", str(tmp_path / "a")]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    assert main(["sweep", str(encoders[0][0]), "--metrics", "nope", "--out", str(tmp_path / "b")]) == 2
    assert main(["sweep", str(tmp_path / "missing*.py"), "--out", str(tmp_path / "c")]) == 2
    assert "matches no file or folder" in capsys.readouterr().err
    assert main(["sweep", "--out", str(tmp_path / "d")]) == 2
    assert main(["sweep", str(encoders[0][0]), "--executor", "processes", "--scheduler", "tcp://x:1",
                 "--out", str(tmp_path / "e")]) == 2
    assert calls(encoders[1]) == before


def test_gpu_sweeps_ask_for_a_gpu_for_encoding_only(encoders: tuple[list[Path], Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from dbench.studies import engine
    from dbench.studies.executors import SerialExecutor

    asked: list[tuple[str, bool]] = []

    class Recording(SerialExecutor):
        def submit(self, fn, *args, gpu=False, priority=0, isolated=False):  # type: ignore[no-untyped-def]
            asked.append((args[0].__name__, gpu))
            return super().submit(fn, *args)

    monkeypatch.setattr(engine, "make_executor", lambda *a, **k: Recording())
    spec = _spec().model_copy(update={"encoders": [str(encoders[0][0])], "seeds": [5]})
    report = engine.run_sweep(spec, tmp_path / "gpu", gpu=True, progress=False)
    assert report.complete and report.ok == len(REPRESENTATIONS)
    assert sorted(set(asked)) == [("encode_group", True), ("score_job", False)]


def test_the_dask_executor_refuses_gpu_work_without_gpu_workers() -> None:
    pytest.importorskip("dask.distributed")
    from dask.distributed import LocalCluster

    from dbench.studies.executors import DaskExecutor

    with (LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
          pytest.raises(ConfigError, match="no Dask worker offers a GPU resource")):
        DaskExecutor(1, scheduler=cluster.scheduler_address, gpu=True)
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        DaskExecutor(1, scheduler="tcp://127.0.0.1:1", connect_timeout=2)

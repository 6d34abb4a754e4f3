"""Faults on the evaluation path: silently wrong codes, nondeterminism, bad options, lost results, interrupts.

Issue 12's cases (codes x 1e300 passing ``check`` and scoring SAP 0.000; a non-deterministic encoder
scored without a word; ``--seed 0 0`` and ``--batch-size 0``; a failed run replacing ``R.json``;
Ctrl-C after encoding losing the finished metrics; 2,000 latents running minutes without a word)
and their class. Real signals on a real run are in the tests marked slow at the end.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from code_sources import centroid_mass_codes

import dbench
from dbench._cli.main import main
from dbench._progress import Progress
from dbench.codes import CodeTable
from dbench.errors import ConfigError, EncoderError, Terminated
from dbench.evaluation import pipeline
from dbench.evaluation.cost import MODELS, estimate_run
from dbench.evaluation.options import EvaluationOptions
from dbench.evaluation.result import read_result
from dbench.evaluation.run_checks import DeterminismWarning, LargeRunWarning, large_run_warning
from dbench.metrics import METRIC_NAMES, get_metric

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"mig": {"n_train": 300}, "sap": {"n_train": 200, "n_test": 100}}
ARGS = ["--dataset", "tiny_dsprites", "--metrics", "mig", "sap", "--set", "mig.n_train=300", "--set", "sap.n_train=200",
        "--set", "sap.n_test=100", "--backend", "numpy", "--no-progress"]


class Moments:
    """Centroid and mass features, optionally scaled or with noise (a forgotten ``model.eval()``)."""

    def __init__(self, scale: float = 1.0, noise: float = 0.0) -> None:
        self.scale, self.noise = scale, noise
        self.name = f"moments_{scale:g}_{noise:g}"

    def encode(self, images):
        codes = centroid_mass_codes(images) / (1, 1, 100)
        if self.noise:
            codes = codes + self.noise * np.random.default_rng().standard_normal(codes.shape)
        return codes * self.scale


def run(encoder, **kw):
    kw.setdefault("dataset", "tiny_dsprites")
    kw.setdefault("metrics", list(SMALL))
    kw.setdefault("params", SMALL)
    kw.setdefault("backend", "numpy")
    kw.setdefault("raise_on_failure", False)  # the tests look at the failed parts themselves
    return dbench.evaluate(encoder, **kw)


# -- codes of absurd scale ----------------------------------------------------------------------------


@pytest.mark.parametrize("scale, fragment", [(1e300, "as large as"), (1e40, "as large as"), (1e-300, "no larger than"),
                                             (1e-7, "no larger than")])
def test_codes_of_absurd_scale_are_refused_not_scored(scale, fragment):
    result = run(Moments(scale=scale))
    assert result.status == "failed" and result.scores == {}  # never SAP 0.000 with status ok
    assert fragment in result.error and "rescale the codes" in result.error and "\n" not in result.error


@pytest.mark.parametrize("scale", [1e-3, 1e20])
def test_codes_of_unusual_but_safe_scale_are_scored(scale):
    assert run(Moments(scale=scale)).status == "ok"


def test_check_reports_huge_codes_in_its_magnitude_row():
    report = dbench.encoders.check_encoder(Moments(scale=1e300), n_images=16)
    assert not report.passed and report.rows[-1].name == "magnitude"
    assert "as large as" in report.rows[-1].detail
    assert "FAILED: 5 of 6 checks passed" in report.format_table()


def test_huge_precomputed_codes_and_logvar_are_refused_by_the_same_validator():
    from dbench.datasets import get_dataset

    table = CodeTable(get_dataset("tiny_dsprites"), lambda x: (x, None))
    with pytest.raises(EncoderError, match="precomputed codes hold codes as large as 1e"):
        table.add(np.arange(4), np.full((4, 3), 1e300))
    with pytest.raises(EncoderError, match="logvar up to 1e"):
        table.add(np.arange(4), np.ones((4, 3)), np.full((4, 3), 1e4))
    with pytest.raises(EncoderError, match=r"outside \[0, 1536\)"):
        table.add(np.array([0, 5000]), np.ones((2, 3)))


# -- determinism --------------------------------------------------------------------------------------


def test_a_non_deterministic_encoder_is_scored_with_a_recorded_warning(tmp_path):
    with pytest.warns(DeterminismWarning, match="is not deterministic: two calls on the same 8 images disagree"):
        result = run(Moments(noise=0.3))
    assert result.status == "ok" and set(result.scores) == {"mig", "sap"}  # the scores stand
    assert len(result.warnings) == 1 and "model.eval()" in result.warnings[0]
    result.write(tmp_path / "r.json")
    assert read_result(tmp_path / "r.json").warnings == result.warnings


def test_a_deterministic_encoder_gets_no_warning_and_results_keep_their_shape(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeterminismWarning)
        result = run(Moments())
    assert result.warnings == [] and "warnings" not in result.to_dict()


def test_codes_from_the_cache_are_compared_with_a_fresh_call(tmp_path):
    # Weights loaded from elsewhere: the file (and so its fingerprint) stays the same while they change.
    (tmp_path / "enc.py").write_text(
        "from pathlib import Path\nSCALE = float((Path(__file__).parent / 'scale.txt').read_text())\n"
        "def encode(images):\n    return images.reshape(len(images), -1)[:, 1000:4000:300] * SCALE + 0.5\n")
    (tmp_path / "scale.txt").write_text("1")
    assert run(str(tmp_path / "enc.py"), cache_dir=tmp_path / "cache").status == "ok"
    (tmp_path / "scale.txt").write_text("2")
    with pytest.warns(DeterminismWarning, match="the codes cached in .* and a new call on the same 8 images disagree"):
        result = run(str(tmp_path / "enc.py"), cache_dir=tmp_path / "cache")
    assert result.n_encoded == 0 and result.warnings


def test_the_cli_prints_the_determinism_warning_once_and_exits_0(tmp_path):
    (tmp_path / "noisy.py").write_text(
        "import numpy as np\ndef encode(images):\n    x = images.reshape(len(images), -1)[:, 1000:4000:300]\n"
        "    return x + np.random.default_rng().standard_normal(x.shape)\n")
    proc = subprocess.run([sys.executable, "-m", "dbench", "evaluate", "noisy.py", *ARGS, "--out", "R.json"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("dbench: warning")] == [
        line for line in proc.stderr.splitlines() if "is not deterministic" in line]
    assert proc.stderr.count("is not deterministic") == 1
    assert json.loads((tmp_path / "R.json").read_text())["warnings"]


# -- options that cannot be right ---------------------------------------------------------------------


@pytest.mark.parametrize("args, fragment", [
    (["--seed", "0", "0"], "seed: 0 given more than once"),
    (["--seed", "3", "1", "3"], "seed: 3 given more than once"),
    (["--seed", "-1"], "seed: -1 is outside [0, 4294967295]"),
    (["--seed", *map(str, range(101))], "seed: 101 seeds; at most 100"),
    (["--batch-size", "0"], "batch_size: expected an integer in [1, 65536]; got 0"),
    (["--batch-size", "-3"], "batch_size: expected an integer in [1, 65536]; got -3"),
    (["--batch-size", "1000000000"], "got 1000000000"),
])
def test_bad_seeds_and_batch_sizes_are_one_line_usage_errors(tmp_path, capsys, args, fragment):
    out = tmp_path / "R.json"
    assert main(["evaluate", str(ROOT / "examples" / "numpy_encoder.py"), *ARGS, *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err
    assert not out.exists()


def test_the_python_api_refuses_duplicate_seeds():
    with pytest.raises(ConfigError, match="given more than once"):
        run(Moments(), seed=[0, 0])


# -- nothing lost -------------------------------------------------------------------------------------


@pytest.fixture
def good_result(tmp_path) -> Path:
    out = tmp_path / "R.json"
    assert main(["evaluate", str(ROOT / "examples" / "numpy_encoder.py"), *ARGS, "--out", str(out)]) == 0
    return out


def _nan_encoder(tmp_path: Path) -> Path:
    path = tmp_path / "nan.py"
    path.write_text("import numpy as np\ndef encode(images):\n    return np.full((len(images), 3), np.nan)\n")
    return path


def test_a_failed_rerun_never_replaces_a_complete_result(tmp_path, good_result, capsys):
    before = good_result.read_bytes()
    capsys.readouterr()
    assert main(["evaluate", str(_nan_encoder(tmp_path)), *ARGS, "--out", str(good_result)]) == 1
    err = capsys.readouterr().err
    assert "dbench: error: nan on tiny_dsprites (mean): encoder 'nan' returned NaN or inf codes" in err
    assert good_result.read_bytes() == before
    partial = json.loads((tmp_path / "R.partial.json").read_text())
    assert partial["status"] == "failed" and "NaN" in partial["error"]


def test_a_partly_failed_run_goes_to_the_partial_file(tmp_path, good_result, monkeypatch, capsys):
    before = good_result.read_bytes()
    real = pipeline.table_representation

    def sap_fails(table, idx, representation, seed):
        if idx.shape[0] in (100, 200):  # sap's train and test requests (mig's is 300)
            raise ValueError("sap broke")
        return real(table, idx, representation, seed)

    monkeypatch.setattr(pipeline, "table_representation", sap_fails)
    assert main(["evaluate", str(ROOT / "examples" / "numpy_encoder.py"), *ARGS, "--out", str(good_result)]) == 1
    assert good_result.read_bytes() == before
    partial = json.loads((tmp_path / "R.partial.json").read_text())
    assert partial["status"] == "partial" and set(partial["scores"]) == {"mig"} and partial["errors"]["sap"] == "sap broke"


def test_a_run_that_scores_nothing_keeps_an_earlier_partial_result(tmp_path, monkeypatch, capsys):
    real = pipeline.table_representation

    def sap_fails(table, idx, representation, seed):
        if idx.shape[0] in (100, 200):
            raise ValueError("sap broke")
        return real(table, idx, representation, seed)

    out = tmp_path / "R.json"
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "table_representation", sap_fails)
        assert main(["evaluate", str(ROOT / "examples" / "numpy_encoder.py"), *ARGS, "--out", str(out)]) == 1
    earlier = (tmp_path / "R.partial.json").read_bytes()
    capsys.readouterr()
    nan = _nan_encoder(tmp_path)
    assert main(["evaluate", str(nan), *ARGS, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert (tmp_path / "R.partial.json").read_bytes() == earlier  # mig's score is still there
    assert f"kept the earlier partial result {tmp_path / 'R.partial.json'}" in err
    assert "encoder 'nan' returned NaN or inf codes" in err


def test_a_complete_run_replaces_its_own_checkpoint(tmp_path, capsys):
    out = tmp_path / "R.json"
    assert main(["evaluate", str(ROOT / "examples" / "numpy_encoder.py"), *ARGS, "--out", str(out)]) == 0
    assert out.is_file() and not (tmp_path / "R.partial.json").exists()


def test_checkpoints_hold_every_finished_metric(tmp_path):
    seen = []
    results = pipeline.evaluate_all(
        Moments(), EvaluationOptions(dataset="tiny_dsprites", metrics=["mig", "sap"], params=SMALL, backend="numpy"),
        checkpoint=lambda result, n: seen.append((n, result.status, sorted(result.scores), dict(result.errors))))
    assert results[0].status == "ok"
    assert [s[:3] for s in seen] == [(1, "partial", ["mig"]), (1, "partial", ["mig", "sap"])]
    assert "not scored yet" in seen[0][3]["sap"]


def test_an_out_below_a_file_is_one_line_naming_the_folder(tmp_path, capsys):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    out = tmp_path / "blocker" / "R.json"
    assert main(["evaluate", str(ROOT / "examples" / "numpy_encoder.py"), *ARGS, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"its folder {out.parent} cannot be made (a file is in the way)" in err, err


def test_an_unwritable_out_is_one_line_and_exit_1(tmp_path, capsys):
    (tmp_path / "R.json").mkdir()  # a folder where the file should go
    assert main(["evaluate", str(ROOT / "examples" / "numpy_encoder.py"), *ARGS, "--out", str(tmp_path / "R.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write the result" in err, err


@pytest.mark.parametrize("interrupt, code", [(KeyboardInterrupt, 130), (lambda: Terminated("SIGTERM"), 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_while_scoring_keeps_the_finished_metrics(tmp_path, good_result, monkeypatch, capsys, interrupt, code):
    before = good_result.read_bytes()
    real = pipeline.table_representation
    calls = []

    def interrupted_at_sap(table, idx, representation, seed):
        calls.append(idx.shape)
        if len(calls) == 2:  # mig takes one request, sap's first is the second call
            raise interrupt()
        return real(table, idx, representation, seed)

    monkeypatch.setattr(pipeline, "table_representation", interrupted_at_sap)
    assert main(["evaluate", str(ROOT / "examples" / "numpy_encoder.py"), *ARGS, "--out", str(good_result)]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("interrupted" in err or "terminated" in err)
    assert good_result.read_bytes() == before
    partial = json.loads((tmp_path / "R.partial.json").read_text())
    assert partial["status"] == "partial" and set(partial["scores"]) == {"mig"}
    signame = "SIGINT" if code == 130 else "SIGTERM"
    assert partial["error"].startswith(f"interrupted by {signame} while scoring sap (seed 0)")
    assert partial["errors"]["sap"].startswith(f"not scored: interrupted by {signame}")


def test_an_interrupt_while_encoding_keeps_the_codes_for_the_rerun(tmp_path):
    class Interrupting(Moments):
        fingerprint = "interrupting"
        calls = 0

        def encode(self, images):
            Interrupting.calls += 1
            if Interrupting.calls == 3:
                raise KeyboardInterrupt
            return super().encode(images)

    with pytest.raises(pipeline.EvaluationInterrupted) as exc:
        run(Interrupting(), cache_dir=tmp_path, batch_size=64)
    assert exc.value.signal_name == "SIGINT" and exc.value.results[0].status == "failed"
    assert "interrupted by SIGINT while encoding" in exc.value.results[0].error
    resumed = run(Interrupting(), cache_dir=tmp_path, batch_size=64)
    fresh = run(Moments())
    assert resumed.status == "ok" and resumed.n_encoded < fresh.n_encoded
    assert resumed.scores == fresh.scores


def test_a_metric_that_crashes_never_loses_the_others(monkeypatch):
    spec = get_metric("sap")
    real = type(spec).score

    def score(self, plan, codes, params):
        if self.name == "sap":
            raise MemoryError("Unable to allocate 3.6 TiB")
        return real(self, plan, codes, params)

    monkeypatch.setattr(type(spec), "score", score)
    result = run(Moments())
    assert result.status == "partial" and set(result.scores) == {"mig"}
    assert result.errors["sap"] == "failed with MemoryError: Unable to allocate 3.6 TiB"


@pytest.mark.parametrize("text, fragment", [("[" * 100_000 + "]" * 100_000, "nested too deeply"),
                                            ('{"a": "' + "x" * 100 + '"', "not valid JSON")])
def test_a_hostile_result_file_is_one_line(tmp_path, text, fragment):
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment) as exc:
        read_result(path)
    assert "\n" not in str(exc.value) and len(str(exc.value)) < 300


@pytest.mark.parametrize("edit, fragment", [
    (lambda d: d["scores"]["mig"].update(mig=1e300), "score 'mig' = 1e+300 is outside its declared range [0.0, 1.0]"),
    (lambda d: d["scores"]["mig"].update(mig=float("nan")), "score 'mig' = nan is not finite"),
    (lambda d: d["scores"]["sap"].update(sap=-0.5), "score 'sap' = -0.5 is outside its declared range"),
    (lambda d: d["scores"].update(made_up={"x": 0.5}), "scores: unknown metric 'made_up'"),
    (lambda d: d.update(scores_std={"mig": {"mig": -0.1}}, seeds=[0]), "scores_std.mig.mig = -0.1 is not a finite"),
], ids=["1e300", "NaN", "below its range", "unknown metric", "negative spread"])
def test_a_result_file_with_impossible_scores_is_refused_in_one_line(tmp_path, good_result, edit, fragment):
    data = json.loads(good_result.read_text())
    edit(data)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))  # json writes NaN and Infinity, as a hand edit might
    with pytest.raises(ConfigError, match=re.escape(fragment)) as exc:
        read_result(path)
    assert "\n" not in str(exc.value) and str(path) in str(exc.value)


@pytest.mark.parametrize("config", ["[" * 100_000 + "]" * 100_000, '{"a": "' + "x" * (1 << 20) + '"}', "{broken"],
                         ids=["deep", "1 MB", "not JSON"])
def test_a_hostile_run_config_is_left_out_of_the_provenance(tmp_path, config):
    from dbench.evaluation.provenance import training_info

    (tmp_path / "config.json").write_text(config)
    assert training_info(tmp_path) is None  # never a RecursionError, never a huge config copied into results
    (tmp_path / "config.json").write_text('{"steps": 10, "finished": true}')
    assert training_info(tmp_path) == {"config": {"steps": 10, "finished": True}, "step": 10}


# -- progress and the size warning ----------------------------------------------------------------------


class _Log:
    """A non-terminal stream that keeps the lines written."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines += [line for line in text.splitlines() if line]

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def test_progress_in_a_log_is_a_line_every_interval_with_metric_stage_and_elapsed(monkeypatch):
    monkeypatch.setenv("DBENCH_PROGRESS_INTERVAL", "0.05")
    log = _Log()
    with Progress("scoring", total=2, unit="metric runs", stream=log) as bar:
        bar.update()
        bar.step("dci (seed 0)", estimate=390)
        time.sleep(0.4)
    assert len(log.lines) >= 3
    assert "dbench: scoring: 1 of 2 metric runs; dci (seed 0): 0s elapsed (estimated ~6m30s);" in log.lines[0]
    assert log.lines[-1].startswith("dbench: scoring: 1 of 2 metric runs; finished in")


def test_progress_disabled_writes_nothing():
    log = _Log()
    with Progress("scoring", total=2, stream=log, enabled=False) as bar:
        bar.update(2)
    assert log.lines == []


def test_every_metric_has_a_cost_model():
    assert set(MODELS) == set(METRIC_NAMES)
    params = {name: get_metric(name).defaults for name in METRIC_NAMES}
    narrow, wide = estimate_run(params, n_latents=10, n_factors=5), estimate_run(params, n_latents=2000, n_factors=5)
    assert all(0 < narrow[m] < wide[m] for m in METRIC_NAMES)


def test_two_thousand_latents_warn_up_front_with_an_estimate():
    quick = dbench.protocols.resolve_protocol("quick")["metrics"]
    message = large_run_warning(quick, 1, n_latents=2000, n_factors=5)
    assert message and "dci ~" in message and "2000 latents" in message and "\n" not in message
    assert large_run_warning(quick, 1, n_latents=10, n_factors=5) is None


def test_the_size_warning_comes_before_scoring(monkeypatch):
    class Wide(Moments):
        def encode(self, images):
            return np.repeat(super().encode(images), 700, axis=1) + np.arange(2100) * 1e-3

    order: list = []
    monkeypatch.setattr(pipeline, "_score_all", lambda *a, **k: order.append("scoring"))  # stop before the minutes
    monkeypatch.setattr(warnings, "warn", lambda message, category=None, stacklevel=1: order.append(category))
    run(Wide(), metrics=["dci"], params={"dci": {"n_train": 3000, "n_test": 100}}, dataset="dsprites")
    assert order == [LargeRunWarning, "scoring"]


# -- real signals on a real run (slow) -----------------------------------------------------------------

WIDE = ("import numpy as np\n_W = np.random.default_rng(0).standard_normal((4096, {width})).astype(np.float32) / 64\n"
        "def encode(images):\n    return images.reshape(images.shape[0], -1) @ _W\n")


def _start(tmp_path: Path, width: int, *extra: str) -> subprocess.Popen:
    (tmp_path / "wide.py").write_text(WIDE.format(width=width))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DBENCH_PROGRESS_INTERVAL": "0.5"}
    return subprocess.Popen([sys.executable, "-m", "dbench", "evaluate", "wide.py", "--metrics", "mig", "dci",
                             "--backend", "numpy", "--out", "R.json", *extra], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _stop(proc: subprocess.Popen, how: str) -> float:
    """Send SIGTERM, or SIGINT twice (a user pressing Ctrl-C again); the time of the first signal."""
    start = time.monotonic()
    if how == "SIGTERM":
        proc.send_signal(signal.SIGTERM)
    else:
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
    return start


def _wait_for(proc: subprocess.Popen, fragment: str) -> str:
    seen = ""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen += line
        if fragment in line:
            return seen
    proc.kill()
    raise AssertionError(f"never saw {fragment!r}: {seen[-2000:]}")


@pytest.mark.slow
def test_sigint_during_dci_writes_mig_as_a_partial_result(tmp_path):
    proc = _start(tmp_path, 200, "--set", "dci.n_train=400", "--set", "dci.n_test=100")
    _wait_for(proc, "dci (seed 0)")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err
    partial = json.loads((tmp_path / "R.partial.json").read_text())
    assert partial["status"] == "partial" and set(partial["scores"]) == {"mig"}
    assert not (tmp_path / "R.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["second SIGINT", "SIGTERM"])
def test_a_run_in_a_long_stage_stops_quickly_and_keeps_the_finished_metrics(tmp_path, how):
    proc = _start(tmp_path, 2000, "--set", "dci.n_train=1000")
    seen = _wait_for(proc, "dci (seed 0)")
    assert "this run is large: scoring 2000 latents is estimated at" in seen  # said up front
    assert "dbench: scoring: 1 of 2 metric runs; dci (seed 0):" in seen  # progress lines in a log
    start = _stop(proc, how)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (143 if how == "SIGTERM" else 130), err
    assert time.monotonic() - start < 30 and "Traceback" not in err
    # Handled in Python between two compiled calls, or killed by the parent while inside one: either
    # way mig, finished before, is in the partial result.
    partial = json.loads((tmp_path / "R.partial.json").read_text())
    assert partial["status"] == "partial" and set(partial["scores"]) == {"mig"}
    assert partial["errors"]["dci"].startswith(("not scored yet", "not scored: interrupted"))


SWALLOWS = ("import time\ndef encode(images):\n    while True:  # user code that swallows every interrupt\n"
            "        try:\n            time.sleep(0.05)\n        except KeyboardInterrupt:\n            pass\n")


@pytest.mark.parametrize("how, code", [("second SIGINT", 130), ("SIGTERM", 143)])
def test_user_code_that_swallows_interrupts_is_stopped_by_the_supervisor(tmp_path, how, code):
    (tmp_path / "stubborn.py").write_text(SWALLOWS)
    proc = subprocess.Popen([sys.executable, "-m", "dbench", "evaluate", "stubborn.py", *ARGS, "--out", "R.json"],
                            cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(4)  # loaded and inside encode
    start = _stop(proc, how)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "stopped" in err and err.count("\n") == 1, err
    assert time.monotonic() - start < 20
    assert not (tmp_path / "R.json").exists()


def test_a_check_of_user_code_that_swallows_interrupts_is_stopped_in_checks_terms(tmp_path):
    (tmp_path / "stubborn.py").write_text(SWALLOWS)
    proc = subprocess.Popen([sys.executable, "-m", "dbench", "check", "stubborn.py"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    time.sleep(4)  # loaded and inside encode
    _stop(proc, "SIGTERM")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "`dbench check` stopped" in err and err.count("\n") == 1 and "--out" not in err, err


def test_codes_that_cannot_be_saved_are_a_warning_and_every_metric_is_scored(tmp_path, capsys):
    out = tmp_path / "R.json"
    (tmp_path / "R.codes").write_text("a file where the codes folder should go")
    assert main(["evaluate", str(ROOT / "examples" / "numpy_encoder.py"), *ARGS, "--out", str(out), "--save-codes"]) == 0
    err = capsys.readouterr().err
    assert "dbench: warning: cannot save the codes of mig to" in err and "the scores are not affected" in err, err
    assert err.count("cannot save the codes") == 1  # saving stops after the first failure
    assert set(json.loads(out.read_text())["scores"]) == {"mig", "sap"}

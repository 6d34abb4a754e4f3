"""``dbench evaluate`` as a researcher uses it daily: several encoders and datasets, result folders,
finished work skipped, codes saved, impossible representations skipped with one notice, the call
recorded, warnings in one line. Run in-process (``main(argv)``) on a tiny protocol to stay fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dbench._cli.main import main
from dbench.evaluation.result import read_result

TWO_REPRESENTATIONS = """\
name: tinyboth
version: 1
datasets: [tiny_dsprites]
representation: [mean, sampled]
seeds: [0]
backend: numpy
metrics:
  mig: {n_train: 300}
  sap: {n_train: 200, n_test: 100}
"""

ENCODER = """\
import numpy as np

def encode(images):
    pixels = images[:, 0]
    ys, xs = np.mgrid[: pixels.shape[1], : pixels.shape[2]]
    mass = pixels.sum(axis=(1, 2)) + 1e-6
    codes = np.stack([(pixels * xs).sum(axis=(1, 2)) / mass, (pixels * ys).sum(axis=(1, 2)) / mass, mass], axis=1)
    return {result}
"""


def write_encoder(folder: Path, name: str, *, posterior: bool = False, body: str | None = None) -> Path:
    path = folder / f"{name}.py"
    result = "codes, np.full_like(codes, -2.0)" if posterior else "codes"
    path.write_text(body if body is not None else ENCODER.format(result=result))
    return path


@pytest.fixture
def protocol(tmp_path):
    path = tmp_path / "tinyboth.yaml"
    path.write_text(TWO_REPRESENTATIONS)
    return path


def run(capsys, *args):
    code = main(["evaluate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_codes_only_encoder_skips_sampled_with_one_notice_and_says_where_results_went(tmp_path, protocol, capsys):
    encoder = write_encoder(tmp_path, "codes_only")
    out_file = tmp_path / "r.json"
    code, out, err = run(capsys, encoder, "--protocol", protocol, "--out", out_file, "--plots", tmp_path / "plots")
    assert code == 0, err
    assert err.count("skipped the sampled representation") == 1 and "returns codes only" in err
    assert "FAILED" not in out and out.count("codes_only on tiny_dsprites (mean representation") == 1
    # Several results were asked for: the naming rule is printed, and every file written is named.
    assert f"2 results: --out {out_file} is written as {tmp_path / 'r'}.<dataset>-<representation>.json" in err
    written = tmp_path / "r.tiny_dsprites-mean.json"
    assert f"wrote {written}" in out and read_result(written).status == "ok"
    assert not (tmp_path / "r.tiny_dsprites-sampled.json").exists()
    scores_png = tmp_path / "plots" / "tiny_dsprites-mean" / "scores.png"
    assert f"wrote {scores_png}" in out and scores_png.stat().st_size > 10_000


def test_several_encoders_and_datasets_into_a_results_folder_and_finished_work_is_skipped(tmp_path, capsys):
    a, b = write_encoder(tmp_path, "enc_a"), write_encoder(tmp_path, "enc_b", posterior=True)
    out = tmp_path / "results"
    args = [a, b, "--dataset", "tiny_dsprites", "dsprites", "--metrics", "mig", "--set", "mig.n_train=200",
            "--backend", "numpy", "--out", out]
    code, stdout, err = run(capsys, *args)
    assert code == 0, err
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json"))
    folder = files[0].split("/")[1]  # a derived protocol: its name and the start of its hash
    assert folder == f"quick+custom-{read_result(out / files[0]).protocol.hash[:8]}"
    assert files == sorted(f"{enc}/{folder}/{ds}-mean.json" for enc in ("enc_a", "enc_b") for ds in ("tiny_dsprites", "dsprites"))
    assert stdout.count("wrote ") == 4 and f"results go to {out}/<encoder>/<protocol>/" in err
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.json")}
    # Rerun: everything is finished, nothing is evaluated again.
    code, stdout, err = run(capsys, *args)
    assert code == 0 and stdout.count("skipped ") == 4 and "wrote" not in stdout
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*.json")}
    # --overwrite evaluates again; another --set is another protocol, in its own folder.
    code, stdout, _ = run(capsys, *args, "--overwrite")
    assert code == 0 and stdout.count("wrote ") == 4
    code, stdout, _ = run(capsys, a, "--dataset", "tiny_dsprites", "--metrics", "mig", "--set", "mig.n_train=100",
                          "--backend", "numpy", "--out", out)
    assert code == 0 and "skipped" not in stdout and len(list((out / "enc_a").iterdir())) == 2


def test_save_codes_writes_indices_codes_and_factors_per_metric_and_seed(tmp_path, capsys):
    encoder = write_encoder(tmp_path, "enc")
    out_file = tmp_path / "r.json"
    code, stdout, err = run(capsys, encoder, "--dataset", "tiny_dsprites", "--metrics", "mig", "sap", "--seed", "0", "1",
                            "--set", "mig.n_train=200", "--set", "sap.n_train=100", "--set", "sap.n_test=50",
                            "--backend", "numpy", "--out", out_file, "--save-codes")
    assert code == 0, err
    folder = tmp_path / "r.codes"
    assert sorted(p.name for p in folder.iterdir()) == ["mig.seed0.npz", "mig.seed1.npz", "sap.seed0.npz", "sap.seed1.npz"]
    assert "wrote 4 code files" in stdout
    with np.load(folder / "sap.seed1.npz") as data:
        assert data["train__indices"].shape == (100,) and data["test__codes"].shape == (50, 3)
        assert data["train__factors"].shape == (100, 5) and str(data["representation"]) == "mean"
        assert list(data["factor_names"]) == ["shape", "scale", "orientation", "pos_x", "pos_y"]
    from dbench.datasets import get_dataset, indices_to_factors

    with np.load(folder / "mig.seed0.npz") as data:
        assert np.array_equal(data["train__factors"], indices_to_factors(get_dataset("tiny_dsprites"), data["train__indices"]))
    code, _, err = run(capsys, encoder, "--dataset", "tiny_dsprites", "--save-codes")
    assert code == 2 and "--save-codes writes the codes beside the result files" in err


def test_limit_and_the_command_line_are_recorded(tmp_path, capsys):
    encoder = write_encoder(tmp_path, "enc")
    out_file = tmp_path / "r.json"
    args = [encoder, "--dataset", "tiny_dsprites", "--metrics", "mig", "dci", "--limit", "0.05", "--backend", "numpy",
            "--out", out_file]
    code, _, err = run(capsys, *args)
    assert code == 0, err
    result = read_result(out_file)
    assert result.protocol.name == "quick+custom" and result.protocol.resolved["limit"] == 0.05
    assert result.metric_params["mig"]["n_train"] == 100 and result.metric_params["dci"]["n_test"] == 50
    assert result.provenance.invocation == "dbench evaluate " + " ".join(map(str, args))
    assert result.provenance.encoder_file["sha256"] and result.provenance.encoder_file["path"] == str(encoder.resolve())
    assert result.schema_version == 2 and "scikit-learn" in result.environment["versions"]


def test_sampled_on_a_mean_only_protocol_is_accepted_by_leaderboard_build(tmp_path, capsys):
    from dbench.leaderboard.build import build_leaderboard

    encoder = write_encoder(tmp_path, "post", posterior=True)
    (tmp_path / "results").mkdir()
    code, _, err = run(capsys, encoder, "--dataset", "tiny_dsprites", "--metrics", "mig", "--set", "mig.n_train=200",
                       "--representation", "sampled", "--backend", "numpy", "--out", tmp_path / "results" / "r.json")
    assert code == 0, err
    report = build_leaderboard(tmp_path / "results", tmp_path / "site")
    assert report.refused == [] and report.n_ranked == 1


def test_warnings_are_one_line_without_python_source(tmp_path, capsys):
    constant = write_encoder(tmp_path, "flat", body="import numpy as np\n\ndef encode(images):\n"
                                                    "    return np.zeros((images.shape[0], 3))\n")
    code, _, err = run(capsys, constant, "--dataset", "tiny_dsprites", "--metrics", "mig", "--set", "mig.n_train=200",
                       "--backend", "numpy")
    assert code == 0, err
    (line,) = [line for line in err.splitlines() if "DegenerateInputWarning" in line]
    assert line.startswith("dbench: warning: mig: ") and line.endswith("(DegenerateInputWarning)")
    assert "warn" not in err.replace("warning", "") and ".py:" not in err


def test_one_failing_encoder_does_not_stop_the_others(tmp_path, capsys):
    good = write_encoder(tmp_path, "good")
    broken = write_encoder(tmp_path, "broken", body="raise RuntimeError('weights missing')\n")
    out = tmp_path / "results"
    code, stdout, err = run(capsys, broken, good, "--dataset", "tiny_dsprites", "--metrics", "mig",
                            "--set", "mig.n_train=200", "--backend", "numpy", "--out", out)
    assert code == 1
    assert f"dbench: error: {broken}: importing broken.py raised RuntimeError: weights missing" in err
    assert len(list(out.rglob("good/*/*.json"))) == 1 and "wrote" in stdout


def test_usage_errors_stop_before_any_encoding(tmp_path, capsys):
    a = write_encoder(tmp_path, "enc")
    (tmp_path / "other").mkdir()
    b = write_encoder(tmp_path / "other", "enc")
    code, _, err = run(capsys, a, b, "--dataset", "tiny_dsprites", "--out", tmp_path / "results")
    assert code == 2 and "share the name 'enc'" in err
    code, _, err = run(capsys, a, "--out", "r.json", "--output-dir", "x")
    assert code == 2 and "--out and --output-dir both given" in err
    for bad in ("0", "1.5", "-1"):
        code, _, err = run(capsys, a, "--limit", bad)
        assert code == 2 and "limit: expected a fraction in (0, 1]" in err


def test_list_protocols_and_python_dash_m(capsys):
    import subprocess
    import sys

    assert main(["list", "protocols"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("challenge v1: ") and "dlib v1:" in out and "representations: mean, sampled" in out
    assert main(["list", "protocols", "--names"]) == 0
    assert capsys.readouterr().out.split() == ["challenge", "dlib", "multiseed", "quick"]
    done = subprocess.run([sys.executable, "-m", "dbench", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("dbench ")


def test_the_evaluate_help_documents_layout_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "DIR/<encoder>/<protocol>/<dataset>-<representation>.json" in text and "--overwrite" in text
    assert "--limit F" in text and "--save-codes" in text
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "exit status:" in capsys.readouterr().out

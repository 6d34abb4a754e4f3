"""Challenge submissions: sandboxed scoring, failure isolation, precomputed codes, metadata checks.

The attacks of issue 11 are in ``test_submissions_attacks.py``; these are the ordinary paths.
Scoring runs in the bubblewrap sandbox where it can run, else (isolation none) as a plain subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from submission_data import GOOD_ENCODER, ISOLATION, make_submission, needs_bwrap, protocol_file

from dbench.submissions.limits import Limits
from dbench.submissions.queries import export_queries, load_query_images, protocol_queries
from dbench.submissions.scoring import Scorer

BAD_ENCODERS = {
    "hangs": "import time\n\ndef encode(images):\n    while True:\n        time.sleep(1)\n",
    "hog": "import numpy as np\n\ndef encode(images):\n    big = np.ones((1 << 31,), dtype=np.float64)\n"
           "    return big[: images.shape[0] * 3].reshape(-1, 3)\n",
    "raises": "def encode(images):\n    raise RuntimeError('my model is broken')\n",
    "nan": "import numpy as np\n\ndef encode(images):\n    return np.full((images.shape[0], 3), np.nan)\n",
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("submissions")


@pytest.fixture(scope="module")
def protocol(workdir) -> Path:
    return protocol_file(workdir)


@pytest.fixture(scope="module")
def trusted(protocol) -> Scorer:
    return Scorer(protocol, trust=True, limits=Limits(wall_seconds=25, memory_bytes=3 << 30), isolation=ISOLATION)


@pytest.fixture(scope="module")
def untrusted(protocol) -> Scorer:
    return Scorer(protocol, limits=Limits(wall_seconds=120, memory_bytes=3 << 30), isolation=ISOLATION)


@pytest.fixture(scope="module")
def direct(trusted, workdir):
    """The good encoder scored once (the reference the other paths are compared with)."""
    scored = trusted.score(make_submission(workdir, "direct", {"encoder.py": GOOD_ENCODER}))
    (result,) = scored.results
    assert result.status == "ok", result.error
    return result


def test_good_submission_scores_with_its_metadata_and_identity(direct):
    assert set(direct.scores) == {"mig", "sap"}
    assert direct.submission.team == "team-direct"
    assert direct.encoder.fingerprint.startswith("sha256:") and len(direct.encoder.fingerprint) == 71
    assert direct.encoder.spec["kind"] == "python" and direct.encoder.spec["submission_sha256"].startswith("sha256:")
    # The images the sandbox encoded, and how long it took there (not 0 as when codes were handed over).
    assert direct.n_encoded == 495 and direct.seconds["encode"] > 0
    assert direct.environment["sandbox"]["isolation"] == ISOLATION


@pytest.mark.slow
def test_bad_encoders_fail_with_one_line_reasons(protocol, workdir):
    scorer = Scorer(protocol, trust=True, limits=Limits(wall_seconds=6, memory_bytes=3 << 30), isolation=ISOLATION)
    reasons = {}
    for name, source in BAD_ENCODERS.items():
        (result,) = scorer.score(make_submission(workdir, name, {"encoder.py": source})).results
        assert result.status == "failed" and result.scores == {}
        assert "\n" not in result.error
        reasons[name] = result.error
    assert "wall-time" in reasons["hangs"]
    assert "memory" in reasons["hog"]
    assert "my model is broken" in reasons["raises"]
    assert "NaN" in reasons["nan"]


def test_python_submission_refused_without_trust(untrusted, workdir):
    (result,) = untrusted.score(make_submission(workdir, "py", {"encoder.py": GOOD_ENCODER})).results
    assert result.status == "failed" and "--trust" in result.error


def test_precomputed_codes_give_the_same_scores_as_the_encoder(untrusted, direct, workdir, protocol):
    from dbench.datasets import get_dataset

    queries = workdir / "queries.npz"
    lines: list[str] = []
    export_queries(protocol, queries, images=True, report=lines.append)
    with np.load(queries) as q:
        indices = q["tiny_dsprites__indices"]
        images = load_query_images(q, "tiny_dsprites")
        assert q["tiny_dsprites__images"].dtype == np.uint8 and str(q["tiny_dsprites__images_encoding"]) == "bits"
    np.testing.assert_array_equal(images, get_dataset("tiny_dsprites").images(indices))  # exact
    assert "bit-packed" in lines[0] and "MB" in lines[0]

    namespace: dict = {}
    exec(GOOD_ENCODER, namespace)  # the participant encodes offline, in their own framework
    codes = namespace["encode"](images)
    order = np.random.default_rng(0).permutation(indices.size)  # any order of the query set
    codes_path = workdir / "codes.npz"
    np.savez(codes_path, tiny_dsprites__indices=indices[order], tiny_dsprites__codes=codes[order])
    (from_codes,) = untrusted.score(make_submission(workdir, "precomputed", {"codes.npz": codes_path.read_bytes()})).results
    assert from_codes.status == "ok", from_codes.error
    assert from_codes.n_encoded == 0  # nothing was encoded: the codes came with the submission
    for metric, keys in direct.scores.items():
        for key, value in keys.items():
            assert from_codes.scores[metric][key] == pytest.approx(value, abs=1e-9)


@pytest.mark.parametrize("change, message", [
    ("missing", "export-queries"),
    ("extra", "is not in the query set"),
    ("wide", "latent dimensions"),
    ("ints", "must be floats"),
    ("nan", "NaN or inf"),
])
def test_bad_codes_fail_clearly(untrusted, workdir, protocol, change, message):
    wanted = protocol_queries(protocol)["tiny_dsprites"]
    codes = np.zeros((wanted.size, 3))
    indices = wanted
    if change == "missing":
        indices, codes = wanted[:10], codes[:10]
    elif change == "extra":
        indices = np.concatenate([wanted[:-1], [wanted.max() + 1]])
    elif change == "wide":
        codes = np.zeros((wanted.size, 300), dtype=np.float32)
    elif change == "ints":
        codes = np.zeros((wanted.size, 3), dtype=np.int64)
    elif change == "nan":
        codes[5, 1] = np.nan
    path = workdir / f"codes-{change}.npz"
    np.savez(path, indices=indices, codes=codes)
    (result,) = untrusted.score(make_submission(workdir, f"codes-{change}", {"codes.npz": path.read_bytes()})).results
    assert result.status == "failed" and message in result.error, result.error


def test_archives_and_metadata_are_checked_in_the_sandbox(untrusted, trusted, workdir):
    folder = make_submission(workdir, "zipped", {"encoder.py": GOOD_ENCODER})
    archive = workdir / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f"zipped/{f.name}")  # one top-level folder: that folder is the submission
    (result,) = trusted.score(archive).results
    assert result.status == "ok", result.error
    assert result.submission.name == "zipped"

    cases = {
        "nometa": (make_submission(workdir, "nometa", {"codes.npz": b""}, meta=b""), "no metadata file"),
        "two": (make_submission(workdir, "two", {"encoder.py": GOOD_ENCODER, "codes.npz": b""}), "exactly one"),
        "typo": (make_submission(workdir, "typo", {"encoder.py": GOOD_ENCODER}, meta="name: x\nteem: typo\n"), "teem"),
        "noteam": (make_submission(workdir, "noteam", {"encoder.py": GOOD_ENCODER}, meta="name: x\n"), "team"),
        "number": (make_submission(workdir, "number", {"encoder.py": GOOD_ENCODER}, meta="name: 12\nteam: t\n"), "must be text"),
        "newline": (make_submission(workdir, "newline", {"encoder.py": GOOD_ENCODER},
                                    meta='name: "a\\nb"\nteam: t\n'), "control characters"),
        "js-link": (make_submission(workdir, "jslink", {"encoder.py": GOOD_ENCODER},
                                    meta="name: a\nteam: t\ncode_url: javascript:alert(1)\n"), "code_url"),
        "list": (make_submission(workdir, "list", {"encoder.py": GOOD_ENCODER}, meta="- a\n- b\n"), "mapping"),
    }
    (workdir / "nometa" / "submission.yaml").unlink()
    for name, (path, message) in cases.items():
        (result,) = untrusted.score(path).results
        assert result.status == "failed" and message in result.error, (name, result.error)
        assert "\n" not in result.error


def test_score_cli_writes_signed_results_a_summary_and_exit_status(workdir, protocol, tmp_path, monkeypatch):
    good = make_submission(tmp_path, "good", {"encoder.py": GOOD_ENCODER})
    bad = make_submission(tmp_path, "raises", {"encoder.py": BAD_ENCODERS["raises"]})
    out = tmp_path / "results"
    env = {**__import__("os").environ, "DBENCH_CONFIG_DIR": str(tmp_path / "config")}
    env.pop("DBENCH_SCORER_KEY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "dbench", "score", str(good), str(bad), "--protocol", str(protocol),
         "--out", str(out), "--trust", "--timeout", "60", "--isolation", ISOLATION, "--progress-seconds", "0"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 1, proc.stderr  # one submission failed
    assert "my model is broken" in proc.stderr and "Traceback" not in proc.stderr
    assert "encoding tiny_dsprites in the sandbox: 495/495 images (100%)" in proc.stderr  # progress, as a log line
    assert "encoded 495 images in" in proc.stdout
    files = sorted(out.glob("*.json"))
    assert len(files) == 2 and all(f.with_name(f.name + ".sig").is_file() for f in files)
    assert {json.loads(f.read_text())["status"] for f in files} == {"ok", "failed"}
    summary = proc.stdout[proc.stdout.index("submission "):]
    assert "FAILED" in summary and " ok " in summary and "1 of 2 evaluations scored; 1 failed" in summary
    key = tmp_path / "config" / "scorer.key"
    assert key.stat().st_mode & 0o777 == 0o600  # created on first use, for the user only
    assert (tmp_path / "config").stat().st_mode & 0o777 == 0o700


def test_onnx_submission_scores_in_the_sandbox(untrusted, direct, workdir):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import warnings

    class Centroid(torch.nn.Module):
        def forward(self, x):
            img = x[:, 0]
            grid = torch.arange(64, dtype=x.dtype)
            mass = img.sum(dim=(1, 2)) + 1e-6
            cx = (img * grid[None, None, :]).sum(dim=(1, 2)) / mass
            cy = (img * grid[None, :, None]).sum(dim=(1, 2)) / mass
            return torch.stack([cx, cy, mass], dim=1)

    folder = make_submission(workdir, "onnx", {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Centroid(), torch.zeros(2, 1, 64, 64), folder / "encoder.onnx", dynamo=False,
                          input_names=["images"], dynamic_axes={"images": {0: "n"}})
    (result,) = untrusted.score(folder).results
    assert result.status == "ok", result.error
    for metric, keys in direct.scores.items():
        for key, value in keys.items():
            assert result.scores[metric][key] == pytest.approx(value, abs=1e-4)


def test_torchscript_submission_scores_in_the_sandbox(untrusted, workdir):
    torch = pytest.importorskip("torch")
    import warnings

    from reference_models.architecture import GaussianEncoder

    folder = make_submission(workdir, "torchscript", {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(GaussianEncoder(1, 4).eval()), str(folder / "encoder.pt"))
    (result,) = untrusted.score(folder).results
    assert result.status == "ok", result.error
    assert result.n_encoded == 495


def test_sandbox_worker_imports_the_scorers_own_dbench(trusted, workdir):
    """The worker runs the very ``dbench`` the scorer imported, not an installed or other copy."""
    import dbench.submissions.sandbox as sandbox

    reveal = "import dbench\n\ndef encode(images):\n    raise RuntimeError('dbench is ' + dbench.__file__)\n"
    (result,) = trusted.score(make_submission(workdir, "reveal", {"encoder.py": reveal})).results
    inside = result.error.split("dbench is ")[1].split(";")[0]
    if ISOLATION == "bwrap":
        assert inside == f"{sandbox.DBENCH_INSIDE}/dbench/__init__.py"
        assert Path(sandbox.__file__).resolve().parents[1] == sandbox._DBENCH_PACKAGE  # what is mounted there
    else:
        assert Path(inside).resolve() == sandbox._DBENCH_PACKAGE / "__init__.py"


def test_a_crash_of_the_scorers_own_code_is_one_failure_record(untrusted, workdir, monkeypatch):
    import dbench.submissions.scoring as scoring

    def broken(*args, **kwargs):
        raise ZeroDivisionError("scorer bug")

    monkeypatch.setattr(scoring, "_check_codes", broken)
    path = workdir / "codes-good.npz"
    wanted = untrusted.queries["tiny_dsprites"]
    np.savez(path, indices=wanted, codes=np.zeros((wanted.size, 2)))
    (result,) = untrusted.score(make_submission(workdir, "crash", {"codes.npz": path.read_bytes()})).results
    assert result.status == "failed"
    assert result.error.startswith("internal error in the scorer on this submission (ZeroDivisionError: scorer bug)")


def test_export_queries_cli_states_the_size_first(protocol, tmp_path):
    out = tmp_path / "q.npz"
    proc = subprocess.run([sys.executable, "-m", "dbench", "protocols", "export-queries", str(protocol), "--out", str(out),
                           "--images"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    first, *_ = proc.stdout.splitlines()
    assert first.startswith("tiny_dsprites: 495 images (bit-packed, 1 bit per pixel): 0.3 MB before compression")
    assert proc.stdout.index("tiny_dsprites:") < proc.stdout.index("wrote")
    with np.load(out) as q:
        assert q["tiny_dsprites__images"].shape == (495, 512)


def test_without_bubblewrap_scoring_stops_in_one_line_unless_isolation_none(protocol, tmp_path):
    good = make_submission(tmp_path, "good", {"encoder.py": GOOD_ENCODER})
    env = {"PATH": str(Path(sys.executable).parent), "DBENCH_CONFIG_DIR": str(tmp_path / "config"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # no bwrap on this PATH
    base = [sys.executable, "-m", "dbench", "score", str(good), "--protocol", str(protocol), "--trust",
            "--out", str(tmp_path / "out")]
    proc = subprocess.run(base, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2 and not (tmp_path / "out").exists()
    (line,) = proc.stderr.strip().splitlines()
    assert "bubblewrap (bwrap) is not installed" in line and "apt-get install bubblewrap" in line
    assert "--isolation none" in line
    proc = subprocess.run(base + ["--isolation", "none"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("WARNING: isolation none: submission code ran without a sandbox")
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("*.json")]
    assert record["environment"]["sandbox"]["isolation"] == "none"
    assert record["environment"]["sandbox"]["warning"].startswith("isolation none:")


@needs_bwrap
def test_a_data_folder_holding_the_signing_key_stops_scoring_before_any_sandbox(protocol, tmp_path):
    home = tmp_path / "home"
    (home / ".config" / "dbench").mkdir(parents=True)
    env = {**__import__("os").environ, "DBENCH_CONFIG_DIR": str(home / ".config" / "dbench")}
    proc = subprocess.run([sys.executable, "-m", "dbench", "score", str(tmp_path / "any"), "--protocol", str(protocol),
                           "--data-dir", str(home), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "holds the scorer's key folder" in proc.stderr and "DBENCH_CONFIG_DIR" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()

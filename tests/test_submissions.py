"""Challenge submissions: sandboxed scoring, failure isolation, precomputed codes, metadata checks."""

from __future__ import annotations

import json
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dbench.errors import ConfigError
from dbench.submissions.metadata import open_submission
from dbench.submissions.queries import export_queries, protocol_queries
from dbench.submissions.sandbox import Limits
from dbench.submissions.scoring import score_submission

PROTOCOL = textwrap.dedent(
    """
    name: tiny_challenge
    version: 1
    description: test protocol on the tiny dataset
    datasets: [tiny_dsprites]
    representation: mean
    seeds: [0]
    backend: numpy
    batch_size: 128
    metrics:
      mig: {n_train: 300}
      sap: {n_train: 200, n_test: 100}
    """
)

GOOD_ENCODER = """
import numpy as np

def encode(images):
    # centroid and area of the sprite: a deterministic, informative code
    n = images.shape[0]
    img = images.reshape(n, 64, 64)
    ys, xs = np.mgrid[0:64, 0:64]
    mass = img.sum(axis=(1, 2)) + 1e-6
    cx = (img * xs).sum(axis=(1, 2)) / mass
    cy = (img * ys).sum(axis=(1, 2)) / mass
    return np.stack([cx, cy, mass], axis=1)
"""

BAD_ENCODERS = {
    "hangs": "import time\n\ndef encode(images):\n    while True:\n        time.sleep(1)\n",
    "hog": "import numpy as np\n\ndef encode(images):\n    big = np.ones((1 << 31,), dtype=np.float64)\n"
           "    return big[: images.shape[0] * 3].reshape(-1, 3)\n",
    "raises": "def encode(images):\n    raise RuntimeError('my model is broken')\n",
    "nan": "import numpy as np\n\ndef encode(images):\n    return np.full((images.shape[0], 3), np.nan)\n",
}


def _submission(root: Path, name: str, files: dict[str, str | bytes]) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "submission.yaml").write_text(f"name: {name}\nteam: team-{name}\ndescription: test\ncode_url: ''\n")
    for fname, content in files.items():
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(folder / fname, mode) as handle:
            handle.write(content)
    return folder


@pytest.fixture()
def protocol_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_challenge.yaml"
    path.write_text(PROTOCOL)
    return path


@pytest.mark.slow  # ~25 s: waits out the hanging encoder's wall-time limit, among six sandboxed runs
def test_good_submission_scores_and_bad_ones_fail_with_reasons(tmp_path, protocol_file):
    limits = Limits(wall_seconds=25, memory_bytes=3 << 30)
    good = score_submission(_submission(tmp_path, "good", {"encoder.py": GOOD_ENCODER}),
                            protocol=protocol_file, trust=True, limits=limits)[0]
    assert good.status == "ok", good.error
    assert set(good.scores) == {"mig", "sap"}
    assert good.submission.team == "team-good"

    reasons = {}
    for name, source in BAD_ENCODERS.items():
        result = score_submission(_submission(tmp_path, name, {"encoder.py": source}),
                                  protocol=protocol_file, trust=True, limits=limits)[0]
        assert result.status == "failed" and result.scores == {}
        assert "\n" not in result.error
        reasons[name] = result.error
    assert "wall-time" in reasons["hangs"]
    assert "memory" in reasons["hog"]
    assert "my model is broken" in reasons["raises"]
    assert "NaN" in reasons["nan"]


def test_python_submission_refused_without_trust(tmp_path, protocol_file):
    result = score_submission(_submission(tmp_path, "py", {"encoder.py": GOOD_ENCODER}), protocol=protocol_file)[0]
    assert result.status == "failed"
    assert "--trust" in result.error


def test_precomputed_codes_give_the_same_scores_as_the_encoder(tmp_path, protocol_file):
    from dbench.datasets import get_dataset

    queries = tmp_path / "queries.npz"
    export_queries(protocol_file, queries, images=True)
    with np.load(queries) as q:
        indices = q["tiny_dsprites__indices"]
        images = q["tiny_dsprites__images"]
    np.testing.assert_array_equal(images, get_dataset("tiny_dsprites").images(indices))

    namespace: dict = {}
    exec(GOOD_ENCODER, namespace)  # the participant encodes offline, in their own framework
    codes = namespace["encode"](images)
    codes_path = tmp_path / "codes.npz"
    np.savez(codes_path, tiny_dsprites__indices=indices, tiny_dsprites__codes=codes)
    sub = _submission(tmp_path, "precomputed", {"codes.npz": codes_path.read_bytes()})
    from_codes = score_submission(sub, protocol=protocol_file)[0]

    direct = score_submission(_submission(tmp_path, "direct", {"encoder.py": GOOD_ENCODER}),
                              protocol=protocol_file, trust=True)[0]
    assert from_codes.status == "ok", from_codes.error
    for metric, keys in direct.scores.items():
        for key, value in keys.items():
            assert from_codes.scores[metric][key] == pytest.approx(value, abs=1e-9)


def test_codes_missing_observations_fail_clearly(tmp_path, protocol_file):
    wanted = protocol_queries(protocol_file)["tiny_dsprites"]
    codes_path = tmp_path / "c.npz"
    np.savez(codes_path, indices=wanted[:10], codes=np.zeros((10, 3)))
    result = score_submission(_submission(tmp_path, "partial", {"codes.npz": codes_path.read_bytes()}),
                              protocol=protocol_file)[0]
    assert result.status == "failed" or result.errors
    text = result.error or " ".join(result.errors.values())
    assert "export-queries" in text


def test_archive_submission_and_metadata_errors(tmp_path, protocol_file):
    folder = _submission(tmp_path, "zipped", {"encoder.py": GOOD_ENCODER})
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f"zipped/{f.name}")
    sub = open_submission(archive)
    assert sub.kind == "python" and sub.meta.name == "zipped"

    no_meta = tmp_path / "nometa"
    no_meta.mkdir()
    (no_meta / "codes.npz").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"submission.yaml"):
        open_submission(no_meta)

    two = _submission(tmp_path, "two", {"encoder.py": GOOD_ENCODER, "codes.npz": b""})
    with pytest.raises(ConfigError, match="exactly one"):
        open_submission(two)

    bad_meta = tmp_path / "badmeta"
    bad_meta.mkdir()
    (bad_meta / "submission.yaml").write_text("name: x\nteem: typo\n")
    (bad_meta / "encoder.py").write_text(GOOD_ENCODER)
    with pytest.raises(ConfigError, match="teem"):
        open_submission(bad_meta)


def test_score_cli_writes_one_result_per_submission(tmp_path, protocol_file):
    import subprocess
    import sys

    good = _submission(tmp_path, "good", {"encoder.py": GOOD_ENCODER})
    bad = _submission(tmp_path, "raises", {"encoder.py": BAD_ENCODERS["raises"]})
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "dbench", "score", str(good), str(bad), "--protocol", str(protocol_file),
         "--out", str(out), "--trust", "--timeout", "60"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1  # one submission failed
    assert "my model is broken" in proc.stderr and "Traceback" not in proc.stderr
    files = sorted(out.glob("*.json"))
    assert len(files) == 2
    statuses = {json.loads(f.read_text())["status"] for f in files}
    assert statuses == {"ok", "failed"}


def test_onnx_submission_scores_in_the_sandbox(tmp_path, protocol_file):
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

    folder = _submission(tmp_path, "onnx", {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Centroid(), torch.zeros(2, 1, 64, 64), folder / "encoder.onnx", dynamo=False,
                          input_names=["images"], dynamic_axes={"images": {0: "n"}})
    result = score_submission(folder, protocol=protocol_file, limits=Limits(wall_seconds=120))[0]
    assert result.status == "ok", result.error
    direct = score_submission(_submission(tmp_path, "direct", {"encoder.py": GOOD_ENCODER}),
                              protocol=protocol_file, trust=True)[0]
    for metric, keys in direct.scores.items():
        for key, value in keys.items():
            assert result.scores[metric][key] == pytest.approx(value, abs=1e-4)



def test_sandbox_worker_imports_the_scorers_own_dbench(tmp_path):
    """The worker runs the very ``dbench`` the scorer imported, not an installed or other copy.

    A copy of the package in a fresh folder plays the scorer (the installed ``dbench`` is elsewhere);
    the worker's clean environment must still import that copy.
    """
    import shutil
    import subprocess
    import sys

    import dbench.submissions.sandbox as sandbox

    scorer_root = tmp_path / "scorer"
    shutil.copytree(Path(sandbox.__file__).resolve().parents[1], scorer_root / "dbench",
                    ignore=shutil.ignore_patterns("__pycache__"))
    work = tmp_path / "work"
    work.mkdir()
    script = textwrap.dedent(
        f"""
        import subprocess, sys
        from pathlib import Path
        from dbench.submissions.sandbox import _clean_env
        out = subprocess.run([sys.executable, "-c", "import dbench.submissions.worker as w; print(w.__file__)"],
                             cwd={str(work)!r}, env=_clean_env(Path({str(work)!r})), capture_output=True,
                             text=True, check=True)
        print(out.stdout.strip())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=work, env={"PYTHONPATH": str(scorer_root)},
                         capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()).resolve() == (scorer_root / "dbench" / "submissions" / "worker.py").resolve()

"""What the sandbox costs per submission (run with ``pytest tests/benchmarks/test_bench_sandbox.py --benchmark-only``).

Pairs measured in one run, so their ratio (not the absolute seconds) is the claim: a Python start, an
import of what the prepare step needs, and an import of torch (what a TorchScript encode step needs),
each as a plain subprocess and inside the bubblewrap sandbox exactly as scoring starts it. Then one
whole submission of precomputed codes (prepare only) and of a TorchScript encoder (prepare + encode).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from submission_data import make_submission, needs_bwrap, protocol_file

from dbench.submissions.limits import Limits
from dbench.submissions.sandbox import Sandbox

pytestmark = needs_bwrap

CODE = {
    "python": "pass",
    "prepare-imports": "import numpy, yaml, pydantic, dbench.submissions.unpack, dbench.submissions.npz",
    "torch": "import torch",
}


def _command(code: str, sandboxed: bool, scratch: Path) -> list[str]:
    python = [sys.executable, "-c", code]
    if not sandboxed:
        return python
    full = Sandbox("bwrap", Limits(), scratch=scratch)._command(["unused"])
    return full[: full.index("--") + 1] + python


@pytest.mark.parametrize("what", list(CODE))
@pytest.mark.parametrize("sandboxed", [False, True], ids=["plain", "bwrap"])
def test_bench_start(benchmark, tmp_path, what, sandboxed):
    command = _command(CODE[what], sandboxed, tmp_path)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    benchmark.pedantic(lambda: subprocess.run(command, check=True, env=env, capture_output=True), rounds=5, iterations=1)


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    from dbench.submissions.scoring import Scorer

    return Scorer(protocol_file(tmp_path_factory.mktemp("bench")), limits=Limits(wall_seconds=120))


def test_bench_codes_submission(benchmark, scorer, tmp_path):
    import numpy as np

    wanted = scorer.queries["tiny_dsprites"]
    np.savez(tmp_path / "c.npz", indices=wanted, codes=np.random.default_rng(0).normal(size=(wanted.size, 3)))
    folder = make_submission(tmp_path, "codes", {"codes.npz": (tmp_path / "c.npz").read_bytes()})
    result = benchmark.pedantic(lambda: scorer.score(folder).results[0], rounds=3, iterations=1)
    assert result.status == "ok"


def test_bench_torchscript_submission(benchmark, scorer, tmp_path):
    torch = pytest.importorskip("torch")
    import warnings

    from reference_models.architecture import GaussianEncoder

    folder = make_submission(tmp_path, "ts", {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(GaussianEncoder(1, 10).eval()), str(folder / "encoder.pt"))
    result = benchmark.pedantic(lambda: scorer.score(folder).results[0], rounds=3, iterations=1)
    assert result.status == "ok"
    benchmark.extra_info["encode_seconds"] = result.seconds["encode"]

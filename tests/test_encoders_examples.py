"""The example encoders carry real information about the dSprites factors."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dbench.datasets import get_dataset
from dbench.datasets.base import indices_to_factors, num_observations
from dbench.encoders import load_encoder

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def tiny():
    dataset = get_dataset("tiny_dsprites")
    indices = np.arange(num_observations(dataset))
    return dataset.images(indices), indices_to_factors(dataset, indices), dataset.factor_names


def test_numpy_example_features_track_the_factors(tiny):
    images, factors, names = tiny
    codes = load_encoder(EXAMPLES / "numpy_encoder.py").encode(images).mean
    assert codes.shape == (images.shape[0], 10) and codes.dtype == np.float32

    def corr(dim: int, factor: str) -> float:
        return abs(np.corrcoef(codes[:, dim], factors[:, names.index(factor)])[0, 1])

    assert corr(0, "pos_x") > 0.99 and corr(1, "pos_y") > 0.99
    assert corr(2, "scale") > 0.8
    # The shape feature separates the three shapes completely: their value ranges do not overlap.
    shape = factors[:, names.index("shape")]
    ranges = sorted((codes[shape == s, 9].min(), codes[shape == s, 9].max()) for s in range(3))
    assert all(low_next > high for (_, high), (low_next, _) in itertools.pairwise(ranges)), ranges


def test_numpy_example_does_not_need_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now fails
        "import numpy as np\n"
        "from dbench.encoders import load_encoder\n"
        f"enc = load_encoder({str(EXAMPLES / 'numpy_encoder.py')!r})\n"
        "print(enc.encode(np.zeros((2, 1, 64, 64), np.float32)).mean.shape)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and "(2, 10)" in proc.stdout, proc.stderr


def test_numpy_example_encodes_colour_and_empty_images():
    encoder = load_encoder(EXAMPLES / "numpy_encoder.py")
    rgb = np.random.default_rng(0).random((3, 3, 64, 64), dtype=np.float32)
    assert encoder.encode(rgb).mean.shape == (3, 10)
    assert np.all(np.isfinite(encoder.encode(np.zeros((2, 1, 64, 64), np.float32)).mean))

"""check_encoder: the pass/fail table of `dbench check` on tiny data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dbench.encoders import CheckReport, check_encoder

ROOT = Path(__file__).resolve().parents[1]
N_IMAGES = 16


def _pixels(images):
    return images.reshape(images.shape[0], -1)[:, ::256]


def _check(spec, **kwargs) -> CheckReport:
    return check_encoder(spec, n_images=N_IMAGES, **kwargs)


def test_good_encoder_passes_every_row():
    report = _check(_pixels)
    assert report.passed, report.format_table()
    names = [row.name for row in report.rows]
    assert names == ["loads", "encodes", "output shape", "dtype", "finite", "magnitude", "mean/logvar",
                     "determinism", "batch-split invariance", "speed"]
    assert report.row("output shape").detail.startswith(f"({N_IMAGES}, 16)")
    assert "codes only" in report.row("mean/logvar").detail
    assert "images/s" in report.row("speed").detail
    assert report.fingerprint and report.fingerprint.startswith("probe:")


def test_table_is_plain_text_with_a_verdict():
    table = _check(_pixels).format_table()
    lines = table.splitlines()
    assert lines[0].startswith("dbench check: _pixels (callable)")
    assert any(line.startswith("determinism") and " PASS " in line for line in lines)
    assert "PASSED: 10 of 10 checks passed" in table


def test_mean_logvar_pair_is_detected():
    report = _check(lambda x: (_pixels(x), np.zeros((x.shape[0], 16))))
    assert report.passed and "(mean, logvar) pair" in report.row("mean/logvar").detail


def test_non_deterministic_encoder_fails_determinism():
    rng = np.random.default_rng(0)
    report = _check(lambda x: _pixels(x) + rng.normal(size=(x.shape[0], 16)))
    assert not report.passed
    row = report.row("determinism")
    assert not row.passed and "two calls on the same images disagree" in row.detail and "\n" not in row.detail
    assert not report.row("batch-split invariance").passed
    assert "FAIL" in report.format_table() and "FAILED" in report.format_table()


def test_batch_statistics_fail_batch_split_invariance():
    def standardise_by_batch(images):
        codes = images.sum(axis=(1, 2)).astype(np.float64)  # column profile of the sprite
        return (codes - codes.mean(axis=0)) / (codes.std(axis=0) + 1e-6)

    report = _check(standardise_by_batch)
    assert report.row("determinism").passed
    row = report.row("batch-split invariance")
    assert not row.passed and "must not depend on the rest of its batch" in row.detail
    assert not report.passed


def test_load_failure_is_a_failed_row_not_an_exception(tmp_path):
    report = _check(tmp_path / "missing.py")
    assert not report.passed and [row.name for row in report.rows] == ["loads"]
    assert "does not exist" in report.rows[0].detail


@pytest.mark.parametrize(
    "encoder, row, fragment",
    [
        (lambda x: 1 / 0, "encodes", "ZeroDivisionError"),
        (lambda x: _pixels(x)[:, 0], "output shape", "reshape to (N, 1)"),
        (lambda x: _pixels(x)[:-1], "output shape", "rows of codes for"),
        (lambda x: _pixels(x).astype(np.complex64), "dtype", "not real-valued"),
        (lambda x: _pixels(x) / 0.0, "finite", "NaN or inf"),
        (lambda x: (_pixels(x), np.zeros((x.shape[0], 2))), "mean/logvar", "logvar of shape"),
    ],
    ids=["raises", "1-D", "rows", "complex", "inf", "logvar"],
)
def test_bad_encoders_fail_the_right_row_and_stop(encoder, row, fragment):
    with np.errstate(divide="ignore", invalid="ignore"):
        report = _check(encoder)
    assert not report.passed
    failed = report.rows[-1]
    assert (failed.name, failed.passed) == (row, False) and fragment in failed.detail
    assert "\n" not in failed.detail


def test_channels_last_guess_shows_in_the_encodes_row():
    def nhwc_only(images):
        if images.shape[-1] != 1:
            raise ValueError(f"expected input with 1 channel last, got shape {images.shape}")
        return images[..., 0].reshape(images.shape[0], -1)[:, ::256]

    detail = _check(nhwc_only).row("encodes").detail
    assert "set channels_last = True" in detail


def test_default_dataset_is_tiny_dsprites_and_names_work():
    report = check_encoder(_pixels, n_images=4)
    assert "tiny_dsprites" in report.row("encodes").detail
    assert check_encoder(_pixels, dataset="tiny_dsprites", n_images=4).passed


def test_needs_two_images():
    with pytest.raises(ValueError, match="at least 2"):
        check_encoder(_pixels, n_images=1)


@pytest.mark.parametrize("example", ["numpy_encoder.py", "torch_cnn_encoder.py"])
def test_examples_pass(example):
    if example.startswith("torch"):
        pytest.importorskip("torch")
    report = _check(ROOT / "examples" / example)
    assert report.passed, report.format_table()
    assert report.fingerprint.startswith("sha256:")

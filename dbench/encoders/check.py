"""``check_encoder``: a seconds-long health check of an encoder on tiny data (``dbench check ENCODER``).

It loads the encoder, encodes a few dozen observations of the tiny dataset and reports one row per
property that the benchmark relies on: loading, the ``(N, D)`` shape, a numeric dtype, finite codes,
whether a log-variance comes with the mean, determinism (two calls agree), batch-split invariance
(``encode(x)[:k] == encode(x[:k])``, since dbench encodes each observation once in arbitrary batches)
and throughput. Failures are reported as rows, never raised, so one run shows every problem.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dbench.datasets.base import GroundTruthDataset, num_observations
from dbench.encoders.loaded import LoadedEncoder
from dbench.encoders.loading import load_encoder, spec_label
from dbench.encoders.validation import (
    MAX_ABS_CODE,
    MIN_LARGEST_CODE,
    EncodedBatch,
    as_float,
    as_host_array,
    check_finite,
    check_logvar,
    check_magnitude,
    check_shape,
    encoder_origin,
    split_pair,
    validate_output,
)
from dbench.errors import DbenchError, EncoderError

DEFAULT_CHECK_DATASET = "tiny_dsprites"
# Codes recomputed on the same images, or on a sub-batch, must agree to float32 round-off: a batched
# matmul may sum in another order for another batch size, but nothing more.
RTOL = 1e-4
ATOL = 1e-5


@dataclass(frozen=True)
class CheckRow:
    """One property of the encoder: its name, whether it holds, and a one-line detail."""

    name: str
    passed: bool
    detail: str


@dataclass
class CheckReport:
    """The result of :func:`check_encoder`: ``passed`` is True when every row passed."""

    encoder: str
    rows: list[CheckRow] = field(default_factory=list)
    fingerprint: str | None = None

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(row.passed for row in self.rows)

    def row(self, name: str) -> CheckRow:
        """The row called ``name`` (KeyError if the check did not get that far)."""
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    def format_table(self) -> str:
        """Plain-text table, one line per check, and a verdict line."""
        width = max([len("check")] + [len(row.name) for row in self.rows])
        lines = [f"dbench check: {self.encoder}", f"{'check'.ljust(width)}  result  detail"]
        lines += [f"{row.name.ljust(width)}  {'PASS' if row.passed else 'FAIL'}    {row.detail}" for row in self.rows]
        n_passed = sum(row.passed for row in self.rows)
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(f"{verdict}: {n_passed} of {len(self.rows)} checks passed")
        if self.fingerprint:
            lines.append(f"fingerprint: {self.fingerprint}")
        return "\n".join(lines)


def codes_mismatch(reference: EncodedBatch, other: EncodedBatch) -> str | None:
    """How ``other`` differs from ``reference`` beyond round-off ("codes differ by up to ..."), or None."""
    pairs = [("codes", reference.mean, other.mean)]
    if reference.logvar is not None and other.logvar is not None:
        pairs.append(("logvar", reference.logvar, other.logvar))
    for what, a, b in pairs:
        if a.shape != b.shape:
            return f"{what} have shape {b.shape} instead of {a.shape}"
        if not np.allclose(a, b, rtol=RTOL, atol=ATOL):
            difference = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
            return f"{what} differ by up to {difference:.3g}"
    return None


def _check_images(dataset: GroundTruthDataset | str | None, n_images: int, seed: int) -> tuple[str, np.ndarray]:
    """``n_images`` distinct observations of the dataset, drawn with ``seed``, and the dataset's name."""
    if dataset is None or isinstance(dataset, str):
        from dbench.datasets import get_dataset

        dataset = get_dataset(dataset or DEFAULT_CHECK_DATASET)
    n_total = num_observations(dataset)
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(n_total, size=min(n_images, n_total), replace=False))
    return dataset.name, dataset.images(indices)


class _Checker:
    """Runs the checks in order, appending a row each; a step fails by raising a DbenchError."""

    def __init__(self, report: CheckReport) -> None:
        self.report = report
        self.seconds: list[float] = []
        self.images_encoded = 0

    def step(self, name: str, run: Callable[[], str]) -> bool:
        try:
            detail = run()
        except DbenchError as exc:
            self.report.rows.append(CheckRow(name, False, str(exc)))
            return False
        self.report.rows.append(CheckRow(name, True, detail))
        return True

    def timed(self, encoder: LoadedEncoder, images: np.ndarray) -> Any:
        start = time.perf_counter()
        raw = encoder.encode_raw(images)
        self.seconds.append(time.perf_counter() - start)
        self.images_encoded += images.shape[0]
        return raw

    def encoded(self, encoder: LoadedEncoder, images: np.ndarray) -> EncodedBatch:
        return validate_output(self.timed(encoder, images), images.shape[0], encoder.who)


def check_encoder(
    spec: Any,
    *,
    dataset: GroundTruthDataset | str | None = None,
    n_images: int = 64,
    seed: int = 0,
) -> CheckReport:
    """Check that ``spec`` loads and behaves as dbench needs, on ``n_images`` tiny-dataset observations.

    Parameters
    ----------
    spec
        Anything :func:`~dbench.encoders.load_encoder` accepts.
    dataset
        A dataset object or registry name (default ``"tiny_dsprites"``).
    n_images : int
        Observations to encode (at least 2, for the batch-split check).
    seed : int
        Seed of the choice of observations.

    Returns
    -------
    CheckReport
        ``passed``, ``rows`` and ``format_table()``. The checks run in order and stop at the first
        failure that makes the rest meaningless (e.g. nothing after a load failure).
    """
    if n_images < 2:
        raise ValueError(f"n_images must be at least 2 for the batch-split check; got {n_images}")
    report = CheckReport(encoder=spec_label(spec))
    checker = _Checker(report)
    state: dict[str, Any] = {}

    def loads() -> str:
        start = time.perf_counter()
        encoder = state["encoder"] = load_encoder(spec)
        report.encoder = f"{encoder.name} ({encoder.kind})"
        layout = "(N, H, W, C)" if encoder.channels_last else "(N, C, H, W)"
        return f"{encoder.kind} {encoder.name!r} in {time.perf_counter() - start:.2f} s; input layout {layout}"

    if not checker.step("loads", loads):
        return report
    encoder: LoadedEncoder = state["encoder"]
    who = encoder.who
    origin = encoder_origin(who)
    dataset_name, images = _check_images(dataset, n_images, seed)
    n = images.shape[0]

    def encodes() -> str:
        mean_raw, state["logvar_raw"] = split_pair(checker.timed(encoder, images), who)
        state["mean_raw"] = as_host_array(mean_raw, origin)
        return f"{n} images of {dataset_name} {images.shape[1:]} -> {type(mean_raw).__name__}"

    def output_shape() -> str:
        check_shape(state["mean_raw"], n, origin)
        return f"{state['mean_raw'].shape} for {n} images"

    def dtype() -> str:
        source = state["mean_raw"].dtype
        state["mean"] = as_float(state["mean_raw"], origin)
        return str(source) if state["mean"].dtype == source else f"{source} (used as {state['mean'].dtype})"

    def finite() -> str:
        check_finite(state["mean"], origin)
        return f"all {n} rows finite"

    def magnitude() -> str:
        check_magnitude(state["mean"], origin)
        largest = float(np.max(np.abs(state["mean"])))
        return f"largest |code| {largest:.3g}, inside [{MIN_LARGEST_CODE:.0e}, {MAX_ABS_CODE:.0e}]"

    def mean_logvar() -> str:
        state["logvar"] = None
        if state["logvar_raw"] is None:
            return "codes only (the 'sampled' representation is unavailable)"
        logvar = as_float(as_host_array(state["logvar_raw"], origin, "logvar"), origin, "logvar")
        check_logvar(state["mean"], logvar, origin)
        state["logvar"] = logvar
        return "(mean, logvar) pair: 'mean' and 'sampled' representations available"

    for name, run in [("encodes", encodes), ("output shape", output_shape), ("dtype", dtype),
                      ("finite", finite), ("magnitude", magnitude), ("mean/logvar", mean_logvar)]:
        if not checker.step(name, run):
            return report
    first = EncodedBatch(state["mean"], state["logvar"])

    def determinism() -> str:
        problem = codes_mismatch(first, checker.encoded(encoder, images))
        if problem:
            raise EncoderError(
                f"two calls on the same images disagree: {problem}; make encode deterministic "
                "(eval mode, no sampling, fixed seeds), since dbench encodes each image only once"
            )
        return "two calls on the same images agree"

    k = n // 2

    def batch_split() -> str:
        head, tail = checker.encoded(encoder, images[:k]), checker.encoded(encoder, images[k:])
        logvar = None if head.logvar is None or tail.logvar is None else np.concatenate([head.logvar, tail.logvar])
        problem = codes_mismatch(first, EncodedBatch(np.concatenate([head.mean, tail.mean]), logvar))
        if problem:
            raise EncoderError(
                f"encode(x[:{k}]) and encode(x[{k}:]) disagree with encode(x): {problem}; an image's code must not "
                "depend on the rest of its batch (batch statistics, batch norm in train mode)"
            )
        return f"encode(x)[:{k}] == encode(x[:{k}]) and encode(x)[{k}:] == encode(x[{k}:])"

    if checker.step("determinism", determinism):
        checker.step("batch-split invariance", batch_split)
    else:
        report.rows.append(CheckRow("batch-split invariance", False, "not checked: the encoder is not deterministic"))
    total = sum(checker.seconds)
    rate = f"{checker.images_encoded / total:,.0f} images/s" if total > 0 else "too fast to time"
    report.rows.append(CheckRow("speed", True, f"{rate} ({checker.images_encoded} images in batches of {k} to {n})"))
    report.fingerprint = encoder.fingerprint
    return report

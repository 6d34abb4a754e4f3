"""Rendering ahead of the encoder (dbench.codes.prefetch) and the code table's stage times."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sampling_metric_data import GridDataset, TableEncoder, factor_table

from dbench.codes.prefetch import rendered_batches
from dbench.codes.table import CodeTable
from dbench.results.table import stage_rates


class RecordingDataset(GridDataset):
    """A grid whose renders are logged (and can fail at a chosen batch)."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__((3, 4, 5))
        self.rendered: list[int] = []
        self.fail_at = fail_at
        self.started = [threading.Event() for _ in range(64)]

    def images(self, indices):
        k = len(self.rendered)
        self.started[k].set()
        if k == self.fail_at:
            raise OSError("disk gone")
        self.rendered.append(int(indices[0]))
        return super().images(indices)


def _alive_render_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "dbench-render-ahead" and t.is_alive()]


def test_batches_come_in_order_with_their_images():
    dataset = RecordingDataset()
    indices = np.arange(60)[::-1].copy()
    out = list(rendered_batches(dataset, indices, batch_size=7))
    np.testing.assert_array_equal(np.concatenate([batch for batch, _, _ in out]), indices)
    for batch, images, seconds in out:
        np.testing.assert_array_equal(images, GridDataset((3, 4, 5)).images(batch))
        assert seconds >= 0
    assert not _alive_render_threads()


def test_the_next_batch_is_rendered_while_the_current_one_is_encoded():
    dataset = RecordingDataset()
    batches = rendered_batches(dataset, np.arange(30), batch_size=10)
    next(batches)
    # the consumer holds batch 0 ("encoding" it): the thread has already started on batch 1
    assert dataset.started[1].wait(timeout=10)
    batches.close()


def test_a_render_error_is_raised_at_its_batch_and_the_thread_ends():
    dataset = RecordingDataset(fail_at=2)
    batches = rendered_batches(dataset, np.arange(50), batch_size=10)
    assert len([next(batches), next(batches)]) == 2
    with pytest.raises(OSError, match="disk gone"):
        next(batches)
    assert not _alive_render_threads()


def test_closing_early_stops_the_thread():
    dataset = RecordingDataset()
    batches = rendered_batches(dataset, np.arange(60), batch_size=1, depth=2)
    next(batches)
    batches.close()
    assert not _alive_render_threads()
    assert len(dataset.rendered) <= 5  # at most depth + the one in flight, not the whole request


def test_code_table_keeps_the_batches_before_an_encoder_failure_and_times_each_part():
    dataset = GridDataset((3, 4, 5))
    encoder = TableEncoder(dataset, factor_table(dataset))
    calls = []

    def encode(images):
        calls.append(len(images))
        if len(calls) == 3:
            raise RuntimeError("encoder crashed")
        return encoder.encode(images), None

    table = CodeTable(dataset, encode, batch_size=8)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        table.ensure(np.arange(60))
    assert len(table) == 16 and table.n_encoded == 16
    assert not _alive_render_threads()
    table.encode_batch = lambda images: (encoder.encode(images), None)
    assert table.ensure(np.arange(60)) == 44
    np.testing.assert_array_equal(table.lookup(np.arange(60)), factor_table(dataset))
    assert table.seconds_rendering > 0 and table.seconds_encoder > 0 and table.seconds_encoding > 0


def test_stage_rates_names_the_bound():
    assert "the encoder bounds" in stage_rates(1000, {"render": 1.0, "encoder": 4.0})
    assert "rendering bounds" in stage_rates(1000, {"render": 4.0, "encoder": 1.0})
    assert stage_rates(0, {"render": 1.0, "encoder": 1.0}) == ""
    assert stage_rates(10, {}) == ""

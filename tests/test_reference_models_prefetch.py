"""The background batch producer: same batches as drawing inline, RNG states, bounds, errors, shutdown."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from reference_models.prefetch import Prefetcher


def _draw(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 1000, size=5)


def _prefetch_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "reference_models-prefetch"]


def test_items_and_states_are_those_of_drawing_in_order():
    rng = np.random.default_rng(3)
    before = rng.bit_generator.state
    with Prefetcher(_draw, rng, count=20, depth=3) as batches:
        got = list(batches)
    assert rng.bit_generator.state == before  # the caller's generator is not advanced

    inline = np.random.default_rng(3)
    assert len(got) == 20
    for entry in got:
        np.testing.assert_array_equal(entry.item, _draw(inline))
        assert entry.rng_state == inline.bit_generator.state


def test_look_ahead_is_bounded_by_the_depth():
    produced = []
    started = threading.Event()

    def produce(rng):
        produced.append(None)
        started.set()
        return _draw(rng)

    with Prefetcher(produce, np.random.default_rng(0), count=100, depth=2) as batches:
        iterator = iter(batches)
        next(iterator)
        started.wait(5)
        for _ in range(50):  # give the thread time to run ahead as far as it may
            threading.Event().wait(0.01)
        # one taken, two waiting in the queue, one finished item blocked on the full queue
        assert len(produced) <= 1 + 2 + 1
    assert not _prefetch_threads()


def test_a_producer_error_is_raised_in_order_and_the_thread_ends():
    def produce(rng):
        value = _draw(rng)
        if len(calls) == 3:
            raise ValueError("render failed")
        calls.append(value)
        return value

    calls: list[np.ndarray] = []
    seen = []
    with pytest.raises(ValueError, match="render failed"), Prefetcher(produce, np.random.default_rng(0), count=10) as batches:
        for entry in batches:
            seen.append(entry.item)
    assert len(seen) == 3
    assert not _prefetch_threads()


def test_leaving_early_stops_the_thread():
    with Prefetcher(_draw, np.random.default_rng(0), count=10**6, depth=4) as batches:
        for index, _ in enumerate(batches):
            if index == 2:
                break
    assert not _prefetch_threads()


def test_iterating_outside_the_context_is_an_error():
    with pytest.raises(RuntimeError, match="context manager"):
        list(Prefetcher(_draw, np.random.default_rng(0), count=1))
    with pytest.raises(ValueError):
        Prefetcher(_draw, np.random.default_rng(0), count=1, depth=0)

"""LoadedEncoder.encode: every kind of returned value is converted, every bad one is one clear line."""

from __future__ import annotations

import numpy as np
import pytest

from dbench.encoders import load_encoder
from dbench.errors import EncoderError

N = 5


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(1).random((N, 1, 64, 64), dtype=np.float32)


def _codes(images: np.ndarray, d: int = 3) -> np.ndarray:
    return images.reshape(images.shape[0], -1)[:, :d].astype(np.float64)


def _encode_with(output_of):
    """Encode test images with an encoder whose return value is ``output_of(images)``."""
    return load_encoder(lambda images: output_of(images))


class ArrayOnly:
    """Has only ``__array__`` (no shape, no dlpack), like many wrapper types."""

    def __init__(self, values: np.ndarray) -> None:
        self._values = values

    def __array__(self, dtype=None, copy=None):
        return self._values if dtype is None else self._values.astype(dtype)


class DLPackOnly:
    """Has only the DLPack protocol."""

    def __init__(self, values: np.ndarray) -> None:
        self._values = values

    def __dlpack__(self, **kwargs):
        return self._values.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._values.__dlpack_device__()


def _same(c):
    return c


@pytest.mark.parametrize(
    "values, wrap, dtype",
    [
        (lambda c: c.astype(np.float32), _same, np.float32),
        (_same, _same, np.float64),
        (lambda c: c.astype(np.float16), _same, np.float32),
        (lambda c: np.round(c * 100).astype(np.int32), _same, np.float64),
        (_same, ArrayOnly, np.float64),
        (_same, DLPackOnly, np.float64),
        (_same, lambda c: c.tolist(), np.float64),
    ],
    ids=["float32", "float64", "float16", "int32", "__array__ only", "__dlpack__ only", "nested list"],
)
def test_array_kinds_are_converted_to_float_numpy(images, values, wrap, dtype):
    batch = _encode_with(lambda x: wrap(values(_codes(x)))).encode(images)
    assert isinstance(batch.mean, np.ndarray) and batch.mean.dtype == dtype and batch.logvar is None
    np.testing.assert_array_equal(batch.mean, values(_codes(images)).astype(dtype))


@pytest.mark.parametrize("container", [tuple, list])
def test_mean_logvar_pair(images, container):
    batch = _encode_with(lambda x: container([_codes(x), np.full((x.shape[0], 3), -2.0)])).encode(images)
    np.testing.assert_array_equal(batch.mean, _codes(images))
    np.testing.assert_array_equal(batch.logvar, np.full((N, 3), -2.0))


def test_two_row_nested_list_is_codes_not_a_pair():
    two = np.random.default_rng(2).random((2, 1, 64, 64), dtype=np.float32)
    batch = _encode_with(lambda x: [[1.0, 2.0], [3.0, 4.0]]).encode(two)
    assert batch.logvar is None and batch.mean.shape == (2, 2)


def _error(images, output_of) -> str:
    loaded = load_encoder(lambda x: output_of(x))
    with pytest.raises(EncoderError) as exc:
        loaded.encode(images)
    message = str(exc.value)
    assert "\n" not in message, message
    return message


def test_nan_and_inf_codes_say_how_many_rows(images):
    def output(x):
        codes = _codes(x)
        codes[1, 0], codes[3, 2] = np.nan, np.inf
        return codes

    assert "NaN or inf codes in 2 of 5 rows" in _error(images, output)


def test_nan_logvar_is_rejected(images):
    def output(x):
        logvar = np.zeros((x.shape[0], 3))
        logvar[0, 0] = np.nan
        return _codes(x), logvar

    assert "NaN or inf logvar in 1 of 5 rows" in _error(images, output)


def test_one_dimensional_codes_say_reshape(images):
    assert "reshape to (N, 1)" in _error(images, lambda x: _codes(x)[:, 0])


def test_image_shaped_codes_say_flatten(images):
    assert "flatten with reshape(N, -1)" in _error(images, lambda x: x[:, 0, :4, :4])


def test_wrong_number_of_rows(images):
    assert "returned 4 rows of codes for 5 images" in _error(images, lambda x: _codes(x)[:-1])


def test_scalar_and_empty_codes(images):
    assert "scalar" in _error(images, lambda x: np.float32(1.0))
    assert "0 dimensions" in _error(images, lambda x: np.zeros((x.shape[0], 0)))


def test_logvar_shape_mismatch(images):
    message = _error(images, lambda x: (_codes(x), np.zeros((x.shape[0], 4))))
    assert "logvar of shape (5, 4) but mean of shape (5, 3)" in message


@pytest.mark.parametrize(
    "output, fragment",
    [
        (lambda x: np.array([["a"]] * x.shape[0]), "not real-valued numeric"),
        (lambda x: _codes(x).astype(np.complex64), "not real-valued numeric"),
        (lambda x: np.array([[object()]] * x.shape[0]), "not real-valued numeric"),
        (lambda x: None, "returned None"),
        (lambda x: (_codes(x), _codes(x), _codes(x)), "tuple of 3 arrays"),
        (lambda x: ("mean", "logvar"), "tuple of 2 non-array items"),
    ],
    ids=["strings", "complex", "objects", "None", "triple", "tuple of strings"],
)
def test_unusable_outputs(images, output, fragment):
    assert fragment in _error(images, output)


def test_exception_inside_the_encoder_names_type_and_first_line(images):
    def broken(x):
        raise ZeroDivisionError("division by zero in layer 3\nTraceback details")

    message = _error(images, broken)
    assert "raised ZeroDivisionError: division by zero in layer 3;" in message and "Traceback" not in message


def test_images_must_be_four_dimensional():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        load_encoder(_codes).encode(np.zeros((2, 64, 64), dtype=np.float32))


def test_a_loaded_encoder_called_gives_the_mean_codes(images):
    def pair(x):
        return _codes(x), np.full((x.shape[0], 3), -4.0)

    np.testing.assert_array_equal(load_encoder(pair)(images), _codes(images))

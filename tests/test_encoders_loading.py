"""load_encoder: every accepted kind of spec, the Python-file rule, layouts and fingerprints."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dbench.encoders import EncodedBatch, Encoder, LoadedEncoder, load_encoder
from dbench.errors import EncoderError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).random((6, 1, 64, 64), dtype=np.float32)


def _pixel_codes(images: np.ndarray) -> np.ndarray:
    """A simple deterministic encoder: a few fixed pixels of each image."""
    return images.reshape(images.shape[0], -1)[:, ::512].copy()


def _write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def _assert_one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and message
    return message


# -- Python files ------------------------------------------------------------------------------------


def test_python_file_with_get_encoder(tmp_path, images):
    path = _write(tmp_path, "with_factory.py", """
        import numpy as np

        class Features:
            def encode(self, images):
                return images.reshape(images.shape[0], -1)[:, ::512]

        def get_encoder():
            return Features()
    """)
    loaded = load_encoder(path)
    assert isinstance(loaded, LoadedEncoder)
    assert (loaded.name, loaded.kind) == ("with_factory", "python-file")
    batch = loaded.encode(images)
    assert isinstance(batch, EncodedBatch) and batch.logvar is None
    np.testing.assert_array_equal(batch.mean, _pixel_codes(images))


def test_python_file_with_module_level_encoder_object(tmp_path, images):
    path = _write(tmp_path, "with_object.py", """
        class Features:
            def encode(self, images):
                return images.reshape(images.shape[0], -1)[:, ::512]

        encoder = Features()
    """)
    np.testing.assert_array_equal(load_encoder(str(path)).encode(images).mean, _pixel_codes(images))


def test_python_file_with_encode_function(tmp_path, images):
    path = _write(tmp_path, "with_function.py", """
        def encode(images):
            return images.reshape(images.shape[0], -1)[:, ::512]
    """)
    np.testing.assert_array_equal(load_encoder(path).encode(images).mean, _pixel_codes(images))


def test_get_encoder_wins_over_encoder_and_encode(tmp_path, images):
    path = _write(tmp_path, "priority.py", """
        import numpy as np

        def get_encoder():
            return lambda images: np.ones((images.shape[0], 1))

        encoder = None

        def encode(images):
            return np.zeros((images.shape[0], 1))
    """)
    assert load_encoder(path).encode(images).mean.tolist() == [[1.0]] * 6


def test_python_file_can_import_its_neighbours_and_leaves_sys_path_alone(tmp_path, images):
    _write(tmp_path, "helper_module_for_dbench_test.py", "SCALE = 3.0\n")
    path = _write(tmp_path, "uses_helper.py", """
        from helper_module_for_dbench_test import SCALE

        def encode(images):
            return SCALE * images.reshape(images.shape[0], -1)[:, ::512]
    """)
    before = list(sys.path)
    np.testing.assert_allclose(load_encoder(path).encode(images).mean, 3.0 * _pixel_codes(images))
    assert sys.path == before


def test_same_file_loaded_twice_gives_independent_modules(tmp_path, images):
    path = _write(tmp_path, "stateful.py", """
        import numpy as np
        CALLS = []

        def encode(images):
            CALLS.append(1)
            return np.full((images.shape[0], 1), float(len(CALLS)))
    """)
    first, second = load_encoder(path), load_encoder(path)
    first.encode(images)
    assert second.encode(images).mean[0, 0] == 1.0  # its own module state, not the first load's


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("x = 1\n", "defines none of get_encoder(), encoder, encode"),
        ("raise RuntimeError('no weights found\\nsecond line')\n", "RuntimeError: no weights found"),
        ("def get_encoder():\n    raise KeyError('w')\n", "get_encoder() in"),
        ("def get_encoder():\n    return None\n", "returned None"),
        ("encoder = 42\n", "cannot use"),
        ("import sys\nsys.exit(3)\n", "SystemExit"),
    ],
)
def test_broken_python_files_give_one_line_errors(tmp_path, source, fragment):
    path = _write(tmp_path, "broken.py", source)
    with pytest.raises(EncoderError) as exc:
        load_encoder(path)
    assert fragment in _assert_one_line(exc)


def test_bad_paths_give_one_line_errors(tmp_path):
    with pytest.raises(EncoderError) as exc:
        load_encoder(tmp_path / "missing.py")
    assert "does not exist" in _assert_one_line(exc)
    (tmp_path / "weights.h5").write_bytes(b"\0")
    with pytest.raises(EncoderError) as exc:
        load_encoder(tmp_path / "weights.h5")
    assert "unknown suffix .h5" in _assert_one_line(exc)
    with pytest.raises(EncoderError) as exc:
        load_encoder(tmp_path)
    assert "no encoder.pt" in _assert_one_line(exc)


# -- in-memory objects ---------------------------------------------------------------------------------


class PixelEncoder:
    name = "pixels"

    def encode(self, images):
        return _pixel_codes(images)


def test_plain_callable(images):
    loaded = load_encoder(_pixel_codes)
    assert (loaded.name, loaded.kind) == ("_pixel_codes", "callable")
    np.testing.assert_array_equal(loaded.encode(images).mean, _pixel_codes(images))


def test_encoder_object_satisfies_the_protocol(images):
    assert isinstance(PixelEncoder(), Encoder)
    loaded = load_encoder(PixelEncoder())
    assert (loaded.name, loaded.kind) == ("pixels", "encoder-object")
    np.testing.assert_array_equal(loaded.encode(images).mean, _pixel_codes(images))


def test_loaded_encoder_is_callable_for_mean_codes(images):
    loaded = load_encoder(PixelEncoder())
    np.testing.assert_array_equal(loaded(images), _pixel_codes(images))
    mean, logvar = loaded.encode_arrays(images)
    assert logvar is None and mean.shape == (6, 8)


@pytest.mark.parametrize("spec, fragment", [(42, "cannot use"), ("", "empty string"), (PixelEncoder, "pass an instance")])
def test_unrecognised_specs_give_one_line_errors(spec, fragment):
    with pytest.raises(EncoderError) as exc:
        load_encoder(spec)
    assert fragment in _assert_one_line(exc)


def test_loading_a_loaded_encoder_changes_only_options(images):
    loaded = load_encoder(PixelEncoder())
    again = load_encoder(loaded, channels_last=True)
    assert (again.channels_last, again.name, again.fingerprint) == (True, loaded.name, loaded.fingerprint)
    assert loaded.channels_last is False


# -- layouts -------------------------------------------------------------------------------------------


class ChannelsLastEncoder:
    """Accepts only (N, H, W, C) images, like a Keras/JAX model."""

    channels_last = True

    def encode(self, images):
        if images.shape[-1] not in (1, 3):
            raise ValueError(f"expected channels last, got shape {images.shape}")
        return images[:, ::16, ::16, 0].reshape(images.shape[0], -1)


def test_channels_last_encoder_gets_nhwc(images):
    loaded = load_encoder(ChannelsLastEncoder())
    assert loaded.channels_last
    np.testing.assert_array_equal(loaded.encode(images).mean, images[:, 0, ::16, ::16].reshape(6, -1))


def test_channels_last_declared_in_a_python_file_module(tmp_path, images):
    path = _write(tmp_path, "nhwc.py", """
        channels_last = True

        def encode(images):
            assert images.shape[-1] == 1, "expected channels last"
            return images[:, ::16, ::16, 0].reshape(images.shape[0], -1)
    """)
    assert load_encoder(path).encode(images).mean.shape == (6, 16)


def test_wrong_layout_is_guessed_on_the_first_call(images):
    class Undeclared(ChannelsLastEncoder):
        channels_last = False

    with pytest.raises(EncoderError) as exc:
        load_encoder(Undeclared()).encode(images)
    message = _assert_one_line(exc)
    assert "ValueError: expected channels last" in message and "set channels_last = True" in message


def test_declared_channels_last_that_is_wrong_says_set_false(images):
    def nchw_only(batch):
        if batch.shape[1] != 1:
            raise RuntimeError(f"Given groups=1, weight of size [32, 1, 4, 4], expected input {batch.shape} to have 1 channels")
        return batch[:, 0, ::16, ::16].reshape(batch.shape[0], -1)

    with pytest.raises(EncoderError) as exc:
        load_encoder(nchw_only, channels_last=True).encode(images)
    assert "set channels_last = False" in _assert_one_line(exc)


def test_channels_last_argument_overrides_the_attribute(images):
    class Undeclared(ChannelsLastEncoder):
        channels_last = False

    assert load_encoder(Undeclared(), channels_last=True).encode(images).mean.shape == (6, 16)


def test_an_error_unrelated_to_layout_is_reported_as_is(images):
    def broken(batch):
        raise KeyError("weights/conv1")

    with pytest.raises(EncoderError) as exc:
        load_encoder(broken).encode(images)
    message = _assert_one_line(exc)
    assert "raised KeyError: 'weights/conv1'" in message and "channels_last" not in message


# -- fingerprints --------------------------------------------------------------------------------------


def test_file_fingerprints_are_stable_and_differ_between_files(tmp_path):
    a = _write(tmp_path, "a.py", "def encode(images):\n    return images.reshape(len(images), -1)[:, :3]\n")
    b = _write(tmp_path, "b.py", "def encode(images):\n    return images.reshape(len(images), -1)[:, :4]\n")
    assert load_encoder(a).fingerprint == load_encoder(a).fingerprint
    assert load_encoder(a).fingerprint.startswith("sha256:")
    assert load_encoder(a).fingerprint != load_encoder(b).fingerprint


def test_declared_fingerprint_is_mixed_into_the_file_hash(tmp_path):
    source = (
        "class E:\n    fingerprint = '{}'\n    def encode(self, x):\n        return x.reshape(len(x), -1)[:, :2]\n\n"
        "encoder = E()\n"
    )
    one = load_encoder(_write(tmp_path, "v.py", source.format("weights-v1"))).fingerprint
    two = load_encoder(_write(tmp_path, "v.py", source.format("weights-v2"))).fingerprint
    assert one != two


def test_object_fingerprints_hash_name_and_probe_codes():
    first, second = load_encoder(PixelEncoder()).fingerprint, load_encoder(PixelEncoder()).fingerprint
    assert first == second and first.startswith("probe:")
    assert load_encoder(lambda x: 2 * _pixel_codes(x)).fingerprint != first


def test_object_that_cannot_encode_the_probe_gets_a_never_matching_fingerprint():
    def three_channel_only(images):
        if images.shape[1] != 3:
            raise ValueError("need RGB")
        return images.reshape(len(images), -1)[:, :2]

    first, second = load_encoder(three_channel_only).fingerprint, load_encoder(three_channel_only).fingerprint
    assert first.startswith("unverified:") and first != second
    rgb = load_encoder(three_channel_only, probe_shape=(3, 64, 64))
    assert rgb.fingerprint == load_encoder(three_channel_only, probe_shape=(3, 64, 64)).fingerprint


def test_examples_load_with_stable_fingerprints():
    path = ROOT / "examples" / "numpy_encoder.py"
    assert load_encoder(path).fingerprint == load_encoder(str(path)).fingerprint


def test_importing_dbench_encoders_does_not_import_torch():
    import subprocess

    code = "import sys, dbench.encoders; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0

"""Torch encoders: modules, modules with encode(), TorchScript files, run directories, tensor outputs."""

from __future__ import annotations

import numpy as np
import pytest

from dbench.encoders import load_encoder
from dbench.errors import EncoderError

torch = pytest.importorskip("torch")

# Building TorchScript test files with a torch that deprecates TorchScript.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:torch.*")

N = 4


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(3).random((N, 1, 64, 64), dtype=np.float32)


class TinyNet(torch.nn.Module):
    """Pools to 4x4 and projects to (mean, logvar); has dropout and batch norm to catch train mode."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = torch.nn.AdaptiveAvgPool2d(4)
        self.norm = torch.nn.BatchNorm1d(16)
        self.drop = torch.nn.Dropout(0.5)
        self.mean = torch.nn.Linear(16, 3)
        self.logvar = torch.nn.Linear(16, 3)

    def forward(self, x):
        hidden = self.drop(self.norm(self.pool(x).flatten(1)))
        return self.mean(hidden), self.logvar(hidden)


def _net(seed: int = 0) -> TinyNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TinyNet()


def _reference(net: TinyNet, images: np.ndarray):
    net.eval()
    with torch.no_grad():
        mean, logvar = net(torch.from_numpy(images))
    return mean.numpy(), logvar.numpy()


def test_module_runs_in_eval_mode_without_grad(images):
    net = _net().train()
    loaded = load_encoder(net)
    assert loaded.kind == "torch-module" and loaded.name == "TinyNet"
    batch = loaded.encode(images)
    assert not net.training
    mean, logvar = _reference(net, images)
    np.testing.assert_allclose(batch.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(batch.logvar, logvar, rtol=1e-6)
    np.testing.assert_array_equal(loaded.encode(images).mean, batch.mean)  # dropout off


def test_module_with_encode_method_is_called_through_encode(images):
    class VAE(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(2.0))

        def encode(self, x):
            assert isinstance(x, torch.Tensor)
            return self.scale * x.flatten(1)[:, :5]

        def forward(self, x):
            raise AssertionError("forward (the decoder path) must not be used")

    np.testing.assert_allclose(load_encoder(VAE()).encode(images).mean, 2.0 * images.reshape(N, -1)[:, :5])


def test_float64_module_gets_float64_inputs(images):
    net = _net().double()
    assert load_encoder(net).encode(images).mean.dtype == np.float64


def test_tensor_outputs_with_grad_and_half_precision(images):
    weight = torch.ones(4096, 2, requires_grad=True)

    def with_grad(x):
        return torch.from_numpy(x).flatten(1) @ weight  # requires_grad output

    expected = images.reshape(N, -1).sum(1)[:, None].repeat(2, 1)
    np.testing.assert_allclose(load_encoder(with_grad).encode(images).mean, expected, rtol=1e-5)
    half = load_encoder(lambda x: torch.from_numpy(x).flatten(1)[:, :3].half()).encode(images).mean
    assert half.dtype == np.float32
    bf16 = load_encoder(lambda x: torch.from_numpy(x).flatten(1)[:, :3].bfloat16()).encode(images).mean
    np.testing.assert_allclose(bf16, images.reshape(N, -1)[:, :3], atol=1e-2)


def test_torchscript_file_and_run_directory(tmp_path, images):
    net = _net()
    scripted = torch.jit.script(net.eval())
    path = tmp_path / "model.pt"
    torch.jit.save(scripted, str(path))
    from_file = load_encoder(path, device="cpu")
    assert (from_file.kind, from_file.name) == ("torchscript", "model")
    mean, logvar = _reference(net, images)
    np.testing.assert_allclose(from_file.encode(images).mean, mean, rtol=1e-5, atol=1e-6)

    run_dir = tmp_path / "betavae_seed0"
    run_dir.mkdir()
    torch.jit.save(scripted, str(run_dir / "encoder.pt"))
    from_dir = load_encoder(run_dir)
    assert (from_dir.kind, from_dir.name) == ("run-dir", "betavae_seed0")
    np.testing.assert_allclose(from_dir.encode(images).logvar, logvar, rtol=1e-5, atol=1e-6)
    assert from_dir.fingerprint == load_encoder(run_dir).fingerprint
    assert from_file.fingerprint == load_encoder(path).fingerprint
    assert from_dir.fingerprint.startswith("sha256:")


def test_torch_export_file(tmp_path, images):
    net = _net().eval()
    batch = torch.export.Dim("batch")
    program = torch.export.export(net, (torch.from_numpy(images),), dynamic_shapes=({0: batch},))
    path = tmp_path / "exported.pt2"
    torch.export.save(program, str(path))
    loaded = load_encoder(path)
    assert loaded.kind == "torch-export"
    mean, logvar = _reference(net, images)
    encoded = loaded.encode(images[:3])  # another batch size than the example input
    np.testing.assert_allclose(encoded.mean, mean[:3], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(encoded.logvar, logvar[:3], rtol=1e-5, atol=1e-6)


def test_a_state_dict_is_not_torchscript(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save(_net().state_dict(), str(path))
    with pytest.raises(EncoderError) as exc:
        load_encoder(path)
    assert "\n" not in str(exc.value) and "torch.jit.save(torch.jit.script(model)" in str(exc.value)


def test_module_fingerprints_follow_the_weights():
    assert load_encoder(_net(0)).fingerprint == load_encoder(_net(0)).fingerprint
    assert load_encoder(_net(0)).fingerprint != load_encoder(_net(1)).fingerprint
    assert load_encoder(_net(0)).fingerprint.startswith("module:")


def test_python_file_fingerprint_includes_module_weights(tmp_path):
    source = (
        "import torch\n\n"
        "def get_encoder():\n"
        "    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4096, 2))\n"
        "    torch.nn.init.constant_(net[1].weight, float(open({weights!r}).read()))\n"
        "    torch.nn.init.zeros_(net[1].bias)\n"
        "    return net\n"
    )
    weights = tmp_path / "weight.txt"
    path = tmp_path / "reads_weights.py"
    path.write_text(source.format(weights=str(weights)))
    weights.write_text("0.5")
    first = load_encoder(path).fingerprint
    assert load_encoder(path).fingerprint == first
    weights.write_text("0.25")
    assert load_encoder(path).fingerprint != first


def test_example_cnn_encoder_is_deterministic_and_returns_a_pair(images):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "torch_cnn_encoder.py"
    state = torch.random.get_rng_state()
    first, second = load_encoder(path), load_encoder(path)
    assert torch.equal(state, torch.random.get_rng_state())  # loading does not reseed the caller
    a, b = first.encode(images), second.encode(images)
    assert a.mean.shape == (N, 10) and a.logvar.shape == (N, 10)
    np.testing.assert_array_equal(a.mean, b.mean)
    assert first.fingerprint == second.fingerprint


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_module_outputs_come_back_to_the_host(images):
    loaded = load_encoder(_net(), device="cuda")
    batch = loaded.encode(images)
    mean, _ = _reference(_net(), images)
    assert isinstance(batch.mean, np.ndarray)
    np.testing.assert_allclose(batch.mean, mean, rtol=1e-3, atol=1e-4)


def test_cpu_batches_are_split_into_chunks_with_the_same_codes():
    from dbench.encoders.adapters import CPU_CHUNK, TorchModuleEncoder

    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 4, stride=2), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.LazyLinear(6))
    images = np.random.default_rng(0).random((3 * CPU_CHUNK + 5, 1, 16, 16), dtype=np.float32)
    calls = []

    class Pair(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = conv

        def forward(self, x):
            calls.append(len(x))
            out = self.net(x)
            return out[:, :3], out[:, 3:]

    with torch.inference_mode():
        whole = conv(torch.from_numpy(images))
    mean, logvar = TorchModuleEncoder(Pair()).encode(images)
    assert calls == [CPU_CHUNK] * 3 + [5]
    np.testing.assert_allclose(torch.cat([mean, logvar], 1).numpy(), whole.numpy(), rtol=1e-5, atol=1e-6)

    class Odd(torch.nn.Module):  # an output chunks cannot be joined from: one call on the whole batch
        def forward(self, x):
            calls.append(len(x))
            return {"codes": x.flatten(1)[:, :2]}

    calls.clear()
    out = TorchModuleEncoder(Odd()).encode(images)
    assert out["codes"].shape == (len(images), 2) and calls[-1] == len(images)

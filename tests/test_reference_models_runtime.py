"""CPU runtime choices of training: thread defaults, the allocator setting, the output layer's kernel."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from reference_models import runtime  # noqa: E402 - imports torch: only after the importorskip
from reference_models.architecture import VAE, OutputDeconv, init_like_tensorflow  # noqa: E402 - imports torch: only after the importorskip


def _fake_topology(root, cores: dict[int, tuple[int, int]]) -> None:
    for cpu, (package, core) in cores.items():
        topology = root / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text(f"{package}\n")
        (topology / "core_id").write_text(f"{core}\n")


def test_hyper_threads_count_once(tmp_path):
    # 2 sockets x 2 cores x 2 hyper-threads
    _fake_topology(tmp_path, {cpu: (cpu // 4, (cpu // 2) % 2) for cpu in range(8)})
    assert runtime.physical_cores(list(range(8)), sysfs=tmp_path) == 4
    assert runtime.physical_cores([0, 1], sysfs=tmp_path) == 1
    assert runtime.physical_cores([0, 2, 4], sysfs=tmp_path) == 3
    assert runtime.physical_cores([0, 9], sysfs=tmp_path) == 2  # no topology for cpu9: count CPUs


@pytest.mark.parametrize(
    ("text", "expected"),
    [("max 100000\n", None), ("200000 100000\n", 2), ("150000 100000", 2), ("50000 100000", 1), ("garbage", None), ("1 0", None)],
)
def test_cgroup_cpu_quota(tmp_path, text, expected):
    path = tmp_path / "cpu.max"
    path.write_text(text)
    assert runtime.cpu_quota(cgroup=path) == expected
    assert runtime.cpu_quota(cgroup=tmp_path / "missing") is None


def test_default_threads_is_the_physical_cores_capped_by_the_quota(monkeypatch):
    monkeypatch.setattr(runtime, "usable_cpus", lambda: list(range(8)))
    monkeypatch.setattr(runtime, "physical_cores", lambda cpus: len(cpus) // 2)
    monkeypatch.setattr(runtime, "cpu_quota", lambda: None)
    assert runtime.default_threads() == 4
    monkeypatch.setattr(runtime, "cpu_quota", lambda: 2)
    assert runtime.default_threads() == 2
    assert 1 <= runtime.physical_cores(runtime.usable_cpus()) <= len(runtime.usable_cpus())


def test_set_threads():
    previous = torch.get_num_threads()
    try:
        runtime.set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the allocator setting is for glibc")
def test_the_allocator_setting_applies_on_glibc():
    # In a fresh process, so the setting does not leak into the test session's allocator.
    code = "from reference_models import runtime; assert runtime.reuse_freed_memory(); assert runtime.reuse_freed_memory()"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_output_layer_computes_a_transposed_convolution():
    torch.manual_seed(0)
    fast = OutputDeconv(32, 3, kernel_size=4, stride=2, padding=1)
    plain = torch.nn.ConvTranspose2d(32, 3, kernel_size=4, stride=2, padding=1)
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(4, 32, 32, 32, dtype=torch.float64)
    fast, plain = fast.double(), plain.double()
    x_fast, x_plain = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_fast, out_plain = fast(x_fast), plain(x_plain)
    assert out_fast.shape == (4, 3, 64, 64)
    torch.testing.assert_close(out_fast, out_plain, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(out_fast)
    out_fast.backward(grad)
    out_plain.backward(grad)
    torch.testing.assert_close(x_fast.grad, x_plain.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast.weight.grad, plain.weight.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast.bias.grad, plain.bias.grad, rtol=1e-12, atol=1e-12)


def test_checkpoint_keys_are_those_of_plain_layers():
    model = VAE()
    init_like_tensorflow(model)
    assert isinstance(model.decoder.deconv[-1], OutputDeconv)
    assert model.decoder.deconv[-1].weight.abs().sum() > 0  # Glorot init reached the subclass
    plain = torch.nn.ConvTranspose2d(32, 1, kernel_size=4, stride=2, padding=1)
    model.decoder.deconv[-1].load_state_dict(plain.state_dict())  # strict: same names and shapes
    assert "decoder.deconv.6.weight" in model.state_dict()

"""Training, resuming, determinism, export and error handling of the reference VAEs (tiny data)."""

from __future__ import annotations

import argparse
import csv
import threading

import numpy as np
import pytest

from dbench.errors import ConfigError, DbenchError

torch = pytest.importorskip("torch")

from dbench.datasets import get_dataset  # noqa: E402
from dbench.datasets.base import sample_factors  # noqa: E402
from reference_models import training  # noqa: E402 - imports torch: only after the importorskip
from reference_models.checkpoint import load_checkpoint, load_run, save_checkpoint  # noqa: E402 - imports torch: only after the importorskip
from reference_models.export import load_exported_encoder  # noqa: E402 - imports torch: only after the importorskip
from reference_models.training import train  # noqa: E402 - imports torch: only after the importorskip

TINY = "tiny_dsprites"


@pytest.fixture(autouse=True)
def one_thread():
    """One thread: fast on a shared 2-core machine and the same floating-point order in every run."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _train(model: str, out, steps: int, **kwargs):
    options = {"dataset": TINY, "seed": 0, "batch_size": 8, "progress": False, "checkpoint_every": 4}
    return train(model, steps=steps, out_dir=out, **{**options, **kwargs})


def _weights(run_dir) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoint.pt")["model_state"]


def _same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _logged_steps(run_dir) -> list[int]:
    with (run_dir / "losses.csv").open(newline="") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


def test_short_training_lowers_the_loss(tmp_path):
    result = _train("beta_vae", tmp_path, 40)
    with (tmp_path / "losses.csv").open(newline="") as handle:
        loss = np.array([float(row["loss"]) for row in csv.DictReader(handle)])
    assert loss.size == 40 and result.steps == 40
    # At dlib's learning rate (1e-4) the first steps mostly learn the black background; from the
    # untrained ~4096 log 2 nats the loss drops by about 3% in 40 steps (batch-to-batch noise ~0.5%).
    assert loss[-5:].mean() < 0.98 * loss[:5].mean()
    for name in ("config.json", "checkpoint.pt", "encoder.pt"):
        assert (tmp_path / name).is_file()


def test_same_seed_gives_the_same_weights(tmp_path):
    _train("vae", tmp_path / "a", 3)
    _train("vae", tmp_path / "b", 3)
    _train("vae", tmp_path / "c", 3, seed=1)
    assert _same_weights(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert not _same_weights(_weights(tmp_path / "a"), _weights(tmp_path / "c"))


def _data_rng_state_after(steps: int, *, seed: int = 0, batch_size: int = 8) -> dict:
    """The data generator's state after drawing the batches of ``steps`` steps in the training loop."""
    rng = np.random.default_rng(seed)
    data = get_dataset(TINY)
    for _ in range(steps):
        sample_factors(data, batch_size, rng)
    return rng.bit_generator.state


@pytest.mark.parametrize("model", ["factor_vae", "annealed_vae"])
def test_resuming_an_interrupted_run_matches_an_uninterrupted_one(tmp_path, monkeypatch, model):
    _train(model, tmp_path / "straight", 10)

    real_step = training.training_step
    real_producer = training.batch_producer
    produced = []

    def counting_producer(data, batch_size, trainer):
        produce = real_producer(data, batch_size, trainer)

        def count(rng):
            produced.append(None)
            return produce(rng)

        return count

    def crash_at_step_6(trainer, variant, hparams, images, step):
        if step == 6:
            # Let the prefetch thread draw every remaining batch first: the checkpoint written at
            # step 4 must not have picked up the generator state of any batch drawn ahead.
            for _ in range(500):
                if len(produced) == 10:
                    break
                threading.Event().wait(0.01)
            assert len(produced) == 10
            raise KeyboardInterrupt
        return real_step(trainer, variant, hparams, images, step)

    monkeypatch.setattr(training, "PREFETCH_DEPTH", 8)
    monkeypatch.setattr(training, "batch_producer", counting_producer)
    monkeypatch.setattr(training, "training_step", crash_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        _train(model, tmp_path / "resumed", 10)
    interrupted = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    assert interrupted["step"] == 4
    assert interrupted["numpy_rng_state"] == _data_rng_state_after(4)
    assert not any(thread.name == "reference_models-prefetch" for thread in threading.enumerate())
    monkeypatch.setattr(training, "training_step", real_step)
    _train(model, tmp_path / "resumed", 10)

    assert _same_weights(_weights(tmp_path / "straight"), _weights(tmp_path / "resumed"))
    straight = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    resumed = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    if model == "factor_vae":
        assert _same_weights(straight["discriminator_state"], resumed["discriminator_state"])
    assert _logged_steps(tmp_path / "resumed") == list(range(10))


def test_final_checkpoint_holds_the_data_state_of_the_last_step(tmp_path):
    _train("vae", tmp_path, 7)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["numpy_rng_state"] == _data_rng_state_after(7)


def _rewrite_as_version_one_checkpoint(path) -> None:
    """Make a checkpoint look as the first version wrote it: unfused Adam, contiguous weights."""
    payload = load_checkpoint(path)
    for key in ("vae_optimizer_state", "discriminator_optimizer_state"):
        if payload[key] is not None:
            for group in payload[key]["param_groups"]:
                group["fused"] = None
    payload["model_state"] = {name: value.contiguous() for name, value in payload["model_state"].items()}
    save_checkpoint(path, payload)


@pytest.mark.parametrize("model", ["vae", "factor_vae"])
def test_checkpoints_of_the_first_version_resume_exactly(tmp_path, model):
    """Run folders trained before the speed-ups resume, and continue as a run of this version would."""
    _train(model, tmp_path / "straight", 8)
    _train(model, tmp_path / "old", 4)
    _rewrite_as_version_one_checkpoint(tmp_path / "old" / "checkpoint.pt")
    _train(model, tmp_path / "old", 8)
    assert _same_weights(_weights(tmp_path / "straight"), _weights(tmp_path / "old"))
    optimizer = load_checkpoint(tmp_path / "old" / "checkpoint.pt")["vae_optimizer_state"]
    assert optimizer["param_groups"][0]["fused"] == training.make_adam([torch.zeros(1)], training.VAE_ADAM).defaults["fused"]


def test_resuming_with_another_thread_count_warns(tmp_path):
    _train("vae", tmp_path, 2)
    torch.set_num_threads(2)
    with pytest.warns(UserWarning, match="--threads 1"):
        _train("vae", tmp_path, 3)


def test_training_further_continues_from_the_checkpoint(tmp_path):
    _train("vae", tmp_path / "straight", 6)
    _train("vae", tmp_path / "twice", 3)
    _train("vae", tmp_path / "twice", 6)
    assert _same_weights(_weights(tmp_path / "straight"), _weights(tmp_path / "twice"))
    # Asking for a finished run again changes nothing and keeps its recorded speed.
    result = _train("vae", tmp_path / "twice", 6)
    assert result.steps_per_second > 0 and _logged_steps(tmp_path / "twice") == list(range(6))
    assert _same_weights(_weights(tmp_path / "straight"), _weights(tmp_path / "twice"))


def test_exported_encoder_reproduces_the_module(tmp_path):
    _train("dip_vae_i", tmp_path, 2)
    _, model = load_run(tmp_path)
    scripted = load_exported_encoder(tmp_path / "encoder.pt")
    images = torch.rand((5, 1, 64, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mean, logvar = model.encoder(images)
        scripted_mean, scripted_logvar = scripted(images)
    assert scripted_mean.shape == (5, 10) and scripted_mean.dtype == torch.float32
    assert torch.allclose(mean, scripted_mean, atol=1e-6) and torch.allclose(logvar, scripted_logvar, atol=1e-6)


def test_zero_steps_exports_the_untrained_network(tmp_path):
    result = _train("beta_vae", tmp_path, 0)
    assert result.steps == 0 and (tmp_path / "encoder.pt").is_file()
    assert _logged_steps(tmp_path) == []


def _one_line(error: BaseException) -> str:
    message = str(error)
    assert message and "\n" not in message
    return message


def test_unknown_model_is_a_one_line_error(tmp_path):
    with pytest.raises(DbenchError) as error:
        _train("gamma_vae", tmp_path, 1)
    assert "beta_vae" in _one_line(error.value)


def test_checkpoint_from_another_model_is_rejected(tmp_path):
    _train("vae", tmp_path, 1)
    with pytest.raises(DbenchError) as error:
        _train("beta_tcvae", tmp_path, 2)
    assert "'vae'" in _one_line(error.value)


def test_truncated_checkpoint_is_rejected(tmp_path):
    _train("vae", tmp_path, 1)
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DbenchError) as error:
        _train("vae", tmp_path, 2)
    assert "corrupt" in _one_line(error.value)
    with pytest.raises(DbenchError):
        load_run(tmp_path)


def test_changed_configuration_does_not_resume(tmp_path):
    _train("beta_vae", tmp_path, 1)
    with pytest.raises(ConfigError) as error:
        _train("beta_vae", tmp_path, 2, hparams={"beta": 8})
    assert "hparams" in _one_line(error.value)


def test_bad_hyperparameters_and_devices_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError):
        _train("beta_vae", tmp_path, 1, hparams={"gamma": 3})
    with pytest.raises(ConfigError):
        _train("annealed_vae", tmp_path, 1, hparams={"iteration_threshold": "1.5"})
    if not torch.cuda.is_available():
        with pytest.raises(DbenchError) as error:
            _train("vae", tmp_path, 1, device="cuda")
        assert "cuda" in _one_line(error.value)


def _parser() -> argparse.ArgumentParser:
    from reference_models.cli import register

    parser = argparse.ArgumentParser(prog="dbench")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_trains_traverses_and_plots(tmp_path, capsys):
    parser = _parser()
    run = tmp_path / "run"
    args = parser.parse_args(
        ["train", "beta_vae", "--dataset", TINY, "--steps", "3", "--seed", "1", "--out", str(run),
         "--batch-size", "4", "--set", "beta=2", "--no-progress", "--threads", "1"]
    )
    assert args.func(args) == 0
    assert "3 steps" in capsys.readouterr().out
    assert load_checkpoint(run / "checkpoint.pt")["config"]["hparams"] == {"beta": 2.0}

    args = parser.parse_args(["traverse", str(run), "--out", str(tmp_path / "t.png"), "--n-images", "2", "--n-values", "5"])
    assert args.func(args) == 0
    from matplotlib import image as mpimg

    grid = mpimg.imread(tmp_path / "t.png")
    # A labelled figure: 2 blocks (seed images) of 10 latent rows each, 5 value columns plus the seed
    # column: taller than wide, and more than a blank canvas.
    height, width = grid.shape[:2]
    assert height > 2 * (10 * 64) * 0.5 and width > 6 * 64 * 0.5 and height > width
    assert float(grid[..., :3].std()) > 0.05

    args = parser.parse_args(["plot-losses", str(run), "--out", str(tmp_path / "l.png")])
    assert args.func(args) == 0 and (tmp_path / "l.png").stat().st_size > 0


def test_cli_rejects_malformed_overrides(tmp_path):
    parser = _parser()
    args = parser.parse_args(["train", "vae", "--steps", "1", "--out", str(tmp_path), "--set", "beta"])
    with pytest.raises(ConfigError):
        args.func(args)


def test_cli_defaults_to_the_physical_cores(tmp_path, monkeypatch):
    from reference_models import runtime

    monkeypatch.setattr(runtime, "default_threads", lambda: 1)
    torch.set_num_threads(2)
    parser = _parser()
    args = parser.parse_args(["train", "vae", "--dataset", TINY, "--steps", "1", "--out", str(tmp_path), "--no-progress"])
    assert args.func(args) == 0
    assert torch.get_num_threads() == 1
    assert load_checkpoint(tmp_path / "checkpoint.pt")["config"]["torch_threads"] == 1
    args = parser.parse_args(["train", "vae", "--steps", "1", "--out", str(tmp_path), "--threads", "0"])
    with pytest.raises(ConfigError):
        args.func(args)


def test_cpu_training_layout_and_a_standard_layout_export(tmp_path):
    _train("vae", tmp_path, 1)
    trainer = training.build_trainer(training.get_variant("vae"), 0, torch.device("cpu"), 1)
    assert trainer.model.encoder.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert trainer.input_format == torch.channels_last
    scripted = load_exported_encoder(tmp_path / "encoder.pt")
    assert all(parameter.is_contiguous() for parameter in scripted.parameters())


def test_progress_lines_in_a_log(tmp_path, capsys):
    _train("vae", tmp_path, 3, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "vae: training to step 3, starting"
    assert lines[-1].startswith("vae: step 3/3 (100.0%)") and "finished after" in lines[-1]

"""Training loop for the reference VAEs: seeded data sampling, CSV losses, atomic checkpoints, resume.

Each step draws ``batch_size`` factor vectors uniformly (a seeded ``numpy.random.Generator``), renders
their images with the dataset and takes one Adam step (dlib: lr 1e-4, betas (0.9, 0.999), eps 1e-8;
FactorVAE's discriminator: lr 1e-4, betas (0.5, 0.9)). The reparameterisation noise and FactorVAE's
permutations come from a seeded ``torch.Generator``. Model, optimiser and both RNG states are saved in
the checkpoint, so a resumed run ends with the same weights as an uninterrupted one (same device).

Speed (CPU): batches are drawn and rendered ahead in a background thread (:mod:`.prefetch`); the
encoder runs channels-last; the decoder's output layer uses a GEMM kernel (:class:`OutputDeconv`); Adam
is the fused single-pass kernel where torch has it; freed activations are reused instead of unmapped
(:func:`.runtime.reuse_freed_memory`); deterministic mode does not fill fresh tensors with NaN; the
loss terms are read from the device once per step.
"""

from __future__ import annotations

import contextlib
import csv
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dbench.datasets.base import (
    GroundTruthDataset,
    sample_factors,
    sample_observations_from_factors,
)
from dbench.errors import ConfigError, DatasetError, DbenchError
from reference_models import losses
from reference_models.architecture import (
    NUM_LATENT,
    VAE,
    Discriminator,
    init_like_tensorflow,
)
from reference_models.checkpoint import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    ENCODER_FILE,
    LOSSES_FILE,
    load_checkpoint,
    read_config,
    save_checkpoint,
    write_config,
)
from reference_models.export import export_encoder
from reference_models.prefetch import Prefetcher
from reference_models.progress import TrainingProgress
from reference_models.runtime import reuse_freed_memory
from reference_models.variants import RegularizerInputs, Terms, Variant, get_variant

VAE_ADAM = {"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8}  # vae/AdamOptimizer in shared.gin
DISCRIMINATOR_ADAM = {"lr": 1e-4, "betas": (0.5, 0.9), "eps": 1e-8}  # discriminator/AdamOptimizer
BASE_COLUMNS = ("step", "loss", "reconstruction", "kl", "regularizer")
IMAGE_SIZE = (64, 64)  # the architecture's input size
#: Batches rendered ahead of the training step (each is batch x C x 64 x 64 float32, 1 MB for dSprites).
PREFETCH_DEPTH = 3


@dataclass(frozen=True)
class TrainResult:
    """Where a finished run lives, how far it went, its last losses and its measured speed."""

    out_dir: Path
    steps: int
    last_losses: dict[str, float]
    steps_per_second: float


@dataclass
class Trainer:
    """Everything a training step mutates (the checkpoint is exactly this state plus the step)."""

    model: VAE
    discriminator: Discriminator | None
    vae_optimizer: torch.optim.Adam
    discriminator_optimizer: torch.optim.Adam | None
    data_rng: np.random.Generator
    noise: torch.Generator
    #: Layout of the encoder's weights and input images (channels-last on CPU, where it is faster).
    input_format: torch.memory_format = torch.contiguous_format

    def state(self) -> dict[str, Any]:
        return {
            "model_state": self.model.state_dict(),
            "discriminator_state": None if self.discriminator is None else self.discriminator.state_dict(),
            "vae_optimizer_state": self.vae_optimizer.state_dict(),
            "discriminator_optimizer_state": (
                None if self.discriminator_optimizer is None else self.discriminator_optimizer.state_dict()
            ),
            "numpy_rng_state": self.data_rng.bit_generator.state,
            "torch_rng_state": self.noise.get_state(),
        }

    def load_state(self, payload: Mapping[str, Any]) -> None:
        """Restore a :meth:`state` (also one saved by an earlier version, with unfused Adam)."""
        self.model.load_state_dict(payload["model_state"])
        _load_optimizer_state(self.vae_optimizer, payload["vae_optimizer_state"])
        if self.discriminator is not None and self.discriminator_optimizer is not None:
            self.discriminator.load_state_dict(payload["discriminator_state"])
            _load_optimizer_state(self.discriminator_optimizer, payload["discriminator_optimizer_state"])
        self.data_rng.bit_generator.state = payload["numpy_rng_state"]
        self.noise.set_state(payload["torch_rng_state"])


def make_adam(parameters: Any, settings: Mapping[str, Any]) -> torch.optim.Adam:
    """Adam with ``settings``, using torch's fused kernel where this torch has one for the device.

    The fused kernel does Adam's update in one pass over each tensor instead of about eight (FactorVAE's
    5-million-weight discriminator spends most of its update time there); it computes the same update.
    """
    parameters = list(parameters)
    try:
        return torch.optim.Adam(parameters, **settings, fused=True)
    except (RuntimeError, TypeError):  # torch < 2.4 on CPU, or a device without the kernel
        return torch.optim.Adam(parameters, **settings)


def _load_optimizer_state(optimizer: torch.optim.Adam, state: Mapping[str, Any]) -> None:
    """Load ``state`` but keep this optimiser's kernel choice (a saved group carries its own ``fused``)."""
    fused = [group.get("fused") for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, flag in zip(optimizer.param_groups, fused, strict=True):
        group["fused"] = flag
        if flag:  # the fused kernel wants its step counters as float32 on the parameters' device
            for param in group["params"]:
                entry = optimizer.state.get(param)
                if entry is not None and "step" in entry:
                    entry["step"] = torch.as_tensor(entry["step"], dtype=torch.float32, device=param.device)


def resolve_device(device: str) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a torch.device; DbenchError when CUDA is unavailable."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise DbenchError(f"unknown device {device!r}; use 'cpu' or 'cuda'") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DbenchError("device 'cuda' requested but no CUDA GPU is available; use --device cpu")
    if resolved.type not in ("cpu", "cuda"):
        raise DbenchError(f"unsupported device {device!r}; use 'cpu' or 'cuda'")
    return resolved


def resolve_dataset(dataset: str | GroundTruthDataset) -> GroundTruthDataset:
    """A dataset object, or the one registered under that name in ``dbench.datasets``."""
    if not isinstance(dataset, str):
        return dataset
    try:
        from dbench.datasets import get_dataset
    except ImportError:
        raise DatasetError("dbench.datasets.get_dataset is not available in this installation") from None
    return get_dataset(dataset)


def build_trainer(variant: Variant, seed: int, device: torch.device, num_channels: int) -> Trainer:
    # Initialise under a forked global RNG so the caller's torch random state is left untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VAE(num_channels=num_channels)
        init_like_tensorflow(model)
        discriminator = None
        if variant.adversarial:
            discriminator = Discriminator(num_latent=model.num_latent)
            init_like_tensorflow(discriminator)
    model.to(device).train()
    # oneDNN's convolutions on CPU are faster on channels-last tensors in the encoder (about 6% of a
    # step), not in the decoder, whose transposed convolutions then reorder their outputs.
    input_format = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    model.encoder.to(memory_format=input_format)
    vae_optimizer = make_adam(model.parameters(), VAE_ADAM)
    discriminator_optimizer = None
    if discriminator is not None:
        discriminator.to(device).train()
        discriminator_optimizer = make_adam(discriminator.parameters(), DISCRIMINATOR_ADAM)
    noise = torch.Generator(device=device)
    noise.manual_seed(seed)
    return Trainer(
        model, discriminator, vae_optimizer, discriminator_optimizer, np.random.default_rng(seed), noise, input_format
    )


def batch_producer(data: GroundTruthDataset, batch_size: int, trainer: Trainer) -> Any:
    """``produce(rng)``: draw ``batch_size`` factor vectors and render their images as a CPU tensor."""

    def produce(rng: np.random.Generator) -> torch.Tensor:
        images = torch.from_numpy(sample_observations_from_factors(data, sample_factors(data, batch_size, rng)))
        return images.contiguous(memory_format=trainer.input_format)

    return produce


def training_step(
    trainer: Trainer, variant: Variant, hparams: Mapping[str, Any], images: torch.Tensor, step: int
) -> dict[str, float]:
    """One optimisation step on ``images``; returns the loss terms (floats) of this batch.

    For FactorVAE both networks are updated from the same forward pass, as dlib does (``tf.group`` of
    the two optimisers): the VAE loss only moves encoder/decoder weights, the discriminator loss (on
    the codes and their dimension-wise permutation) only the discriminator's.
    """
    model = trainer.model
    mean, logvar = model.encoder(images)
    z = losses.sample_gaussian(mean, logvar, trainer.noise)
    reconstruction = losses.bernoulli_reconstruction_loss(images, model.decoder(z)).mean()
    kl = losses.gaussian_kl(mean, logvar)
    logits_real = trainer.discriminator(z) if trainer.discriminator is not None else None
    regularizer, extra = variant.regularizer(RegularizerInputs(kl, z, mean, logvar, step, logits_real), hparams)
    loss = reconstruction + regularizer

    trainer.vae_optimizer.zero_grad(set_to_none=True)
    if trainer.discriminator is None or trainer.discriminator_optimizer is None:
        loss.backward()
    else:
        assert logits_real is not None
        logits_permuted = trainer.discriminator(losses.permute_dims(z.detach(), trainer.noise))
        discriminator_loss = losses.factor_vae_discriminator_loss(logits_real, logits_permuted)
        trainer.discriminator_optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=list(model.parameters()), retain_graph=True)
        discriminator_loss.backward(inputs=list(trainer.discriminator.parameters()))
        trainer.discriminator_optimizer.step()
        extra = {**extra, "discriminator_loss": discriminator_loss.detach()}
    trainer.vae_optimizer.step()
    return _read_terms({"loss": loss, "reconstruction": reconstruction, "kl": kl, "regularizer": regularizer, **extra})


def _read_terms(terms: Terms) -> dict[str, float]:
    """The loss terms as floats, reading every tensor from the device in one transfer (one sync)."""
    keys = [key for key, value in terms.items() if isinstance(value, torch.Tensor)]
    values = torch.stack([terms[key].detach().reshape(()) for key in keys]).tolist() if keys else []
    read = dict(zip(keys, values, strict=True))
    return {key: read[key] if key in read else float(value) for key, value in terms.items()}


@contextlib.contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic kernels for the duration of training, restoring the caller's settings after.

    Deterministic mode also fills every new tensor with NaN by default, to expose kernels that read
    uninitialised memory; no kernel used here does, and the fill costs ~6% of a CPU step, so it is off.
    """
    from torch.utils import deterministic as settings

    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by deterministic cuBLAS
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_fill = settings.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=True)
    settings.fill_uninitialized_memory = False
    try:
        yield
    finally:
        settings.fill_uninitialized_memory = previous_fill
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)


def _open_losses_csv(path: Path, columns: list[str], start_step: int):
    """Open the loss log for appending, keeping only rows of steps before ``start_step``.

    Rows logged after the last checkpoint of an interrupted run are dropped, because the resumed run
    recomputes those steps.
    """
    kept: list[dict[str, str]] = []
    if start_step > 0 and path.exists():
        with path.open(newline="", encoding="utf-8") as handle:
            kept = [row for row in csv.DictReader(handle) if int(row["step"]) < start_step]
    handle = path.open("w", newline="", encoding="utf-8")
    writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(kept)
    return handle, writer


def _check_resumable(payload: Mapping[str, Any], config: Mapping[str, Any], path: Path) -> None:
    for key in ("seed", "hparams", "batch_size", "dataset"):
        if payload["config"].get(key) != config[key]:
            raise ConfigError(
                f"checkpoint {path} was trained with {key}={payload['config'].get(key)!r}, not {config[key]!r}; "
                "use another --out folder, or add --restart to start over there (resume=False in Python)"
            )


def _warn_if_threads_changed(trained_with: int | None, now: int, path: Path) -> None:
    """Warn that a CPU run resumed with another thread count is no longer bit-identical to a straight one."""
    if trained_with is not None and int(trained_with) != now:
        warnings.warn(
            f"resuming {path} with {now} torch threads, trained with {trained_with}: the run continues, but its "
            f"weights will differ in the last bits from an uninterrupted run; pass --threads {trained_with} to keep it exact",
            stacklevel=3,
        )


def train(
    model: str,
    *,
    dataset: str | GroundTruthDataset = "dsprites",
    steps: int,
    seed: int,
    out_dir: str | os.PathLike[str],
    device: str = "cpu",
    batch_size: int = 64,
    hparams: Mapping[str, Any] | None = None,
    progress: bool = True,
    checkpoint_every: int = 1000,
    resume: bool = True,
) -> TrainResult:
    """Train reference model ``model`` for ``steps`` steps and export its encoder into ``out_dir``.

    Writes ``config.json``, ``losses.csv`` (one row per step), ``checkpoint.pt`` (every
    ``checkpoint_every`` steps and at the end) and ``encoder.pt`` (TorchScript, returns
    ``(mean, logvar)``). With ``resume=True`` an existing checkpoint of the same configuration is
    continued (a larger ``steps`` trains further). ``steps=0`` exports the untrained network.

    ``progress`` shows a tqdm bar when stderr is a terminal and otherwise writes a line to stderr
    every 30 s (step, steps/s, ETA, last losses). The torch thread count is the caller's
    (``torch.set_num_threads``; ``dbench train`` sets it to the physical cores, see ``--threads``). On
    CPU this sets glibc's allocator to keep freed memory for reuse, process-wide (see
    :func:`reference_models.runtime.reuse_freed_memory`).
    """
    variant = get_variant(model)
    resolved_hparams = variant.resolve_hparams(hparams)
    if steps < 0 or batch_size < 1 or checkpoint_every < 1:
        raise ConfigError(
            f"steps must be >= 0, batch_size and checkpoint_every >= 1; got {steps}, {batch_size}, {checkpoint_every}"
        )
    torch_device = resolve_device(device)
    if torch_device.type == "cpu":
        reuse_freed_memory()
    data = resolve_dataset(dataset)
    if tuple(data.observation_shape[1:]) != IMAGE_SIZE:
        raise DatasetError(f"dataset {data.name!r} has images {data.observation_shape}; the reference models need (C, 64, 64)")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from dbench import __version__ as dbench_version

    config: dict[str, Any] = {
        "model": variant.name,
        "hparams": resolved_hparams,
        "seed": int(seed),
        "steps": int(steps),
        "batch_size": int(batch_size),
        "dataset": data.name,
        "num_channels": int(data.observation_shape[0]),
        "num_latent": NUM_LATENT,
        "dbench_version": dbench_version,
        "torch_version": str(torch.__version__),
        "device": str(torch_device),
        "torch_threads": torch.get_num_threads(),
        "finished": False,
    }
    trainer = build_trainer(variant, seed, torch_device, config["num_channels"])
    checkpoint_path = out / CHECKPOINT_FILE
    start_step = 0
    if resume and checkpoint_path.exists():
        payload = load_checkpoint(checkpoint_path, expected_model=variant.name)
        _check_resumable(payload, config, checkpoint_path)
        trainer.load_state(payload)
        start_step = int(payload["step"])
        _warn_if_threads_changed(payload["config"].get("torch_threads"), config["torch_threads"], checkpoint_path)
        if start_step > steps:
            raise ConfigError(f"checkpoint {checkpoint_path} is at step {start_step}, past --steps {steps}; pass --steps "
                              f"{start_step} or more to continue it, or --restart to train from scratch")
    previous_config = read_config(out) if start_step > 0 and (out / CONFIG_FILE).exists() else {}
    write_config(out, config)

    columns = [*BASE_COLUMNS, *variant.extra_terms]
    last: dict[str, float] = {}
    began = time.perf_counter()

    def checkpoint(step: int) -> None:
        save_checkpoint(checkpoint_path, {"model": variant.name, "config": config, "step": step, **trainer.state()})

    handle, writer = _open_losses_csv(out / LOSSES_FILE, columns, start_step)
    batches = Prefetcher(
        batch_producer(data, batch_size, trainer), trainer.data_rng, count=steps - start_step, depth=PREFETCH_DEPTH
    )
    try:
        report = TrainingProgress(name=variant.name, total=steps, initial=start_step, enabled=progress)
        with _deterministic(torch_device), batches, contextlib.closing(report):
            for step, batch in zip(range(start_step, steps), batches, strict=False):
                last = training_step(trainer, variant, resolved_hparams, batch.item.to(torch_device), step)
                # The data RNG now stands where this step's batch left it: what a checkpoint must hold.
                trainer.data_rng.bit_generator.state = batch.rng_state
                writer.writerow({"step": step, **last})
                report.update(step, last)
                if (step + 1) % checkpoint_every == 0 and step + 1 < steps:
                    handle.flush()
                    checkpoint(step + 1)
        handle.flush()
    finally:
        handle.close()
    checkpoint(steps)
    export_encoder(trainer.model.encoder, out / ENCODER_FILE)
    elapsed = time.perf_counter() - began
    if steps > start_step:
        speed = (steps - start_step) / elapsed
    else:  # nothing left to train: keep the speed measured when the run was trained
        speed = float(previous_config.get("steps_per_second", 0.0))
    write_config(out, {**config, "finished": True, "steps_per_second": round(speed, 3)})
    return TrainResult(out_dir=out, steps=steps, last_losses=last, steps_per_second=speed)

"""Subcommands ``dbench train``, ``dbench traverse`` and ``dbench plot-losses``.

``register(subparsers)`` adds them to dbench's argparse CLI: it is this package's entry point in the
group ``dbench.commands`` (``pyproject.toml``), which dbench discovers; dbench never imports this
package by name. Each subparser's ``func(args)`` returns an exit code and raises
:class:`dbench.errors.DbenchError` (printed as one line) on bad input. torch is imported only when a
handler runs, so ``dbench --help`` stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any

from dbench.errors import ConfigError
from reference_models import MODEL_NAMES


def parse_overrides(pairs: list[str] | None) -> dict[str, str]:
    """``["beta=6", "c_max=10"]`` -> ``{"beta": "6", "c_max": "10"}`` (values checked by the variant)."""
    overrides: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--set expects key=value (e.g. --set beta=6); got {pair!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def _set_threads(threads: int | None, *, default_to_cores: bool = False) -> None:
    """Apply ``--threads``; without it, training uses the physical cores (other commands torch's choice)."""
    from reference_models import runtime

    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be >= 1; got {threads}")
    if threads is None and default_to_cores:
        threads = runtime.default_threads()
    if threads is not None:
        runtime.set_threads(threads)


def run_train(args: argparse.Namespace) -> int:
    from reference_models.training import train

    _set_threads(args.threads, default_to_cores=True)
    result = train(
        args.model,
        dataset=args.dataset,
        steps=args.steps,
        seed=args.seed,
        out_dir=args.out,
        device=args.device,
        batch_size=args.batch_size,
        hparams=parse_overrides(args.set),
        progress=not args.no_progress,
        checkpoint_every=args.checkpoint_every,
        resume=not args.restart,
    )
    summary = ", ".join(f"{key}={value:.4g}" for key, value in result.last_losses.items())
    print(f"trained {args.model} for {result.steps} steps ({result.steps_per_second:.2f} steps/s) -> {result.out_dir}")
    if summary:
        print(f"last step: {summary}")
    return 0


def run_traverse(args: argparse.Namespace) -> int:
    from reference_models.plots import write_traversal

    _set_threads(args.threads)
    path = write_traversal(args.run_dir, args.out, n_images=args.n_images, value_range=args.range, n_values=args.n_values)
    print(f"wrote {path}")
    return 0


def run_plot_losses(args: argparse.Namespace) -> int:
    from reference_models.plots import plot_losses

    path = plot_losses(args.run_dir, args.out, window=args.window)
    print(f"wrote {path}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``train``, ``traverse`` and ``plot-losses`` to an ``argparse`` subparsers object."""
    train = subparsers.add_parser(
        "train",
        help="train a reference VAE variant and export its encoder",
        description="Train a reference VAE (disentanglement_lib architecture) and export encoder.pt.",
        epilog="example: dbench train beta_vae --dataset dsprites --steps 5000 --seed 0 --out runs/beta_vae "
        "--set beta=6",
    )
    train.add_argument("model", choices=MODEL_NAMES, metavar="MODEL", help=f"one of: {', '.join(MODEL_NAMES)}")
    train.add_argument("--dataset", default="dsprites", help="registered dataset name (default: dsprites)")
    train.add_argument("--steps", type=int, required=True, help="training steps (the published studies used 300000)")
    train.add_argument("--seed", type=int, default=0, help="seed of initialisation, data and noise (default: 0)")
    train.add_argument("--out", required=True, help="run directory (resumed when it holds a checkpoint)")
    train.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    train.add_argument("--batch-size", type=int, default=64, help="batch size (default: 64, as dlib)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a hyperparameter; repeatable")
    train.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints (default: 1000)")
    train.add_argument("--restart", action="store_true", help="ignore an existing checkpoint and start over")
    train.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: the physical cores this process may use, best for one training on an "
        "idle machine; with several trainings at once or other jobs running, use 1 per training)",
    )
    train.add_argument(
        "--no-progress", action="store_true", help="no progress (default: a bar in a terminal, a line every 30 s in a log)"
    )
    train.set_defaults(func=run_train)

    traverse = subparsers.add_parser(
        "traverse",
        help="latent-traversal grid of a trained run",
        description="Decode each latent varied over [-range, range] around the codes of a few images.",
        epilog="example: dbench traverse runs/beta_vae --out traversal.png --n-images 3 --range 2",
    )
    traverse.add_argument("run_dir", metavar="DIR", help="a `dbench train --out` directory")
    traverse.add_argument("--out", required=True, help="PNG file to write")
    traverse.add_argument("--n-images", type=int, default=3, help="seed images (default: 3)")
    traverse.add_argument("--range", type=float, default=2.0, help="traverse each latent over [-range, range] (default: 2)")
    traverse.add_argument("--n-values", type=int, default=10, help="values per latent (default: 10)")
    traverse.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    traverse.set_defaults(func=run_traverse)

    plot = subparsers.add_parser(
        "plot-losses",
        help="plot the loss curves of a training run",
        epilog="example: dbench plot-losses runs/beta_vae --out losses.png",
    )
    plot.add_argument("run_dir", metavar="DIR", help="a `dbench train --out` directory")
    plot.add_argument("--out", required=True, help="PNG file to write")
    plot.add_argument("--window", type=int, default=50, help="moving-average window in steps (default: 50)")
    plot.set_defaults(func=run_plot_losses)

"""The sandbox worker: everything that touches a submission's files, run inside the sandbox.

``python -m dbench.submissions.worker prepare ...`` runs no submission code: it copies or unpacks the
submission with limits (:mod:`~dbench.submissions.unpack`), parses its metadata file
(:mod:`~dbench.submissions.metadata`), hashes it and, for a ``codes.npz`` submission, reads the codes
(:mod:`~dbench.submissions.npz`). ``... worker encode ...`` loads the artifact (after the TorchScript
or ONNX checks) and encodes the query set. Each step writes one file in the fixed exchange format
(:mod:`~dbench.submissions.wire`); progress goes to a pipe as ``dbench-progress: DATASET DONE TOTAL``
lines. Any failure is one line on stderr starting with ``dbench-worker:`` and exit status 3.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

PREFIX = "dbench-worker:"
PROGRESS_PREFIX = "dbench-progress: "
_PROGRESS_INTERVAL = 0.5


class OnnxEncoder:
    """An ONNX model as an encoder: first output is the code (or mean), an optional second the log-variance."""

    def __init__(self, path: str) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeError("ONNX submissions need onnxruntime; install it with `pip install onnxruntime`") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
        self.session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def encode(self, images: Any) -> Any:
        import numpy as np

        outputs = self.session.run(None, {self.input_name: np.ascontiguousarray(images, dtype=np.float32)})
        return tuple(outputs[:2]) if len(outputs) >= 2 else outputs[0]


# -- prepare -----------------------------------------------------------------------------------------


def prepare(args: argparse.Namespace) -> None:
    from dbench._json import canonical_json
    from dbench.errors import ConfigError
    from dbench.submissions.metadata import ARTIFACTS, MAX_METADATA_BYTES, METADATA_FILES, parse_metadata
    from dbench.submissions.unpack import unpack_submission
    from dbench.submissions.wire import Wire, write_wire

    label = args.label
    root, digests = unpack_submission(Path(args.source), Path(args.dest), max_entries=args.max_entries,
                                      max_bytes=args.max_bytes, label=label)
    meta_names = [n for n in METADATA_FILES if n in digests]
    if not meta_names:
        raise ConfigError(f"{label}: no metadata file; add submission.yaml with name, team, description, code_url")
    if len(meta_names) > 1:
        raise ConfigError(f"{label}: {len(meta_names)} metadata files ({', '.join(meta_names)}); keep one")
    meta = parse_metadata(_read_small(root / meta_names[0], MAX_METADATA_BYTES), source=f"{label}: {meta_names[0]}")
    found = [n for n in ARTIFACTS if n in digests]
    if len(found) != 1:
        what = "no encoder artifact" if not found else f"{len(found)} artifacts ({', '.join(found)})"
        raise ConfigError(f"{label}: {what}; a submission holds exactly one of {', '.join(ARTIFACTS)} at its top level")
    artifact = found[0]
    manifest = {
        "meta": meta.model_dump(),
        "kind": ARTIFACTS[artifact],
        "artifact": artifact,
        "root": root.relative_to(Path(args.dest)).as_posix(),
        "artifact_sha256": digests[artifact],
        "submission_sha256": hashlib.sha256(canonical_json(sorted(digests.items())).encode()).hexdigest(),
        "n_files": len(digests),
        "n_bytes": sum((root / name).stat().st_size for name in digests),
    }
    wire = Wire(manifest=manifest)
    if manifest["kind"] == "codes":
        from dbench.submissions.npz import read_codes_npz

        queries = _queries(args.queries)
        for dataset, parts in read_codes_npz(root / artifact, queries, label=f"{label}: codes.npz").items():
            for part, array in parts.items():
                wire.arrays[(dataset, part)] = array
    write_wire(args.out, wire)


def _read_small(path: Path, cap: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as handle:
        return handle.read(cap + 1)


def _queries(path: str) -> dict[str, Any]:
    """The query set the scorer wrote: sorted unique indices per dataset."""
    from dbench.submissions.wire import Expect, read_wire

    wire = read_wire(path, Expect(rows=None, parts=("indices",)), source="query set")
    return {dataset: array for (dataset, _), array in wire.arrays.items()}


# -- encode ------------------------------------------------------------------------------------------


def encode(args: argparse.Namespace) -> None:
    import numpy as np

    from dbench.codes import CodeTable
    from dbench.datasets import get_dataset
    from dbench.submissions.wire import DatasetStats, Wire, write_wire

    queries = _queries(args.queries)
    loaded = _load(Path(args.submission), args.kind, args.artifact)
    report = _Progress(args.progress_fd)
    wire = Wire()
    for dataset, indices in queries.items():
        ds = get_dataset(dataset, data_dir=args.data_dir)
        table = CodeTable(ds, loaded.encode_arrays, batch_size=args.batch_size)
        started = time.perf_counter()
        for start in range(0, indices.size, args.batch_size):
            table.ensure(indices[start: start + args.batch_size])
            report(dataset, min(start + args.batch_size, indices.size), indices.size)
        report(dataset, indices.size, indices.size, force=True)
        wire.arrays[(dataset, "mean")] = np.asarray(table.lookup(indices))
        if table.has_logvar:
            wire.arrays[(dataset, "logvar")] = np.asarray(table.lookup(indices, part="logvar"))
        wire.stats[dataset] = DatasetStats(n_encoded=int(table.n_encoded), seconds=time.perf_counter() - started)
    write_wire(args.out, wire)


def _load(root: Path, kind: str, artifact: str) -> Any:
    from dbench.encoders import load_encoder
    from dbench.errors import EncoderError

    path = root / artifact
    if kind == "torchscript":
        import warnings

        import torch

        from dbench.submissions.torchscript_check import check_archive, check_module

        check_archive(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - torch reports a bad archive in several types
            raise EncoderError(f"{artifact}: cannot load as TorchScript ({exc.__class__.__name__}: "
                               f"{(str(exc).strip().splitlines() or [''])[0][:200]})") from None
        check_module(module)
        return load_encoder(module.eval())
    if kind == "onnx":
        from dbench.submissions.onnx_check import check_onnx

        check_onnx(path, root=root)
        return load_encoder(OnnxEncoder(str(path)))
    if kind == "python":
        return load_encoder(path)
    raise EncoderError(f"unknown artifact kind {kind!r}")


class _Progress:
    """Progress lines on the pipe the scorer reads, at most every half second."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        self.last = 0.0

    def __call__(self, dataset: str, done: int, total: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.fd is None or (not force and now - self.last < _PROGRESS_INTERVAL):
            return
        self.last = now
        try:
            os.write(self.fd, f"{PROGRESS_PREFIX}{dataset} {done} {total}\n".encode())
        except OSError:
            self.fd = None


# -- main --------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dbench-worker")
    parser.add_argument("--progress-fd", type=int, default=None)
    parser.add_argument("--max-processes", type=int, default=None)
    steps = parser.add_subparsers(dest="step", required=True)
    p = steps.add_parser("prepare")
    p.add_argument("--source", required=True)
    p.add_argument("--label", required=True)
    p.add_argument("--dest", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--max-entries", type=int, required=True)
    p.add_argument("--max-bytes", type=int, required=True)
    e = steps.add_parser("encode")
    e.add_argument("--submission", required=True)
    e.add_argument("--kind", required=True, choices=("torchscript", "onnx", "python"))
    e.add_argument("--artifact", required=True)
    e.add_argument("--queries", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--data-dir", default=None)
    return parser


def _split_global(argv: list[str]) -> list[str]:
    """Move the global options (appended by the sandbox after the step's own) before the step name."""
    front, rest, i = [], [], 0
    while i < len(argv):
        if argv[i] in ("--progress-fd", "--max-processes") and i + 1 < len(argv):
            front += argv[i: i + 2]
            i += 2
        else:
            rest.append(argv[i])
            i += 1
    return front + rest


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(_split_global(list(sys.argv[1:] if argv is None else argv)))
    # Writes past RLIMIT_FSIZE fail with EFBIG instead of killing the worker with SIGXFSZ.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    if args.max_processes is not None:
        # Set here, inside the sandbox's user namespace, so it counts this sandbox's processes only.
        resource.setrlimit(resource.RLIMIT_NPROC, (args.max_processes, args.max_processes))
    try:
        prepare(args) if args.step == "prepare" else encode(args)
    except MemoryError:
        print(f"{PREFIX} exceeded the memory limit", file=sys.stderr)
        return 3
    except Exception as exc:  # noqa: BLE001 - the scorer records one line and carries on
        print(f"{PREFIX} {_describe(exc)}", file=sys.stderr)
        return 3
    return 0


def _describe(exc: BaseException) -> str:
    from dbench.errors import DbenchError

    text = (str(exc).strip().splitlines() or [""])[0]
    lowered = text.lower()
    if any(sign in lowered for sign in ("memoryerror", "can't allocate memory", "unable to allocate", "out of memory")):
        return f"exceeded the memory limit ({text[:200]})"
    if isinstance(exc, DbenchError):
        return text[:400]
    return f"{exc.__class__.__name__}: {text[:300]}"


if __name__ == "__main__":
    raise SystemExit(main())

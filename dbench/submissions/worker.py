"""The sandbox worker: encodes a query set with an untrusted artifact, in its own process.

Run by :mod:`dbench.submissions.sandbox` as ``python -m dbench.submissions.worker``; it reads only the
paths it is given and writes one ``.npz`` of codes. Any failure is one line on stderr starting with
``dbench-worker:`` and exit status 3.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

PREFIX = "dbench-worker:"


class OnnxEncoder:
    """An ONNX model as an encoder: first output is the code (or mean), an optional second the log-variance."""

    def __init__(self, path: str) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeError("ONNX submissions need onnxruntime; install it with `pip install onnxruntime`") from None
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def encode(self, images: np.ndarray):
        outputs = self.session.run(None, {self.input_name: np.ascontiguousarray(images, dtype=np.float32)})
        return tuple(outputs[:2]) if len(outputs) >= 2 else outputs[0]


def encode_queries(artifact: str, kind: str, dataset: str, indices: np.ndarray, *, batch_size: int,
                   data_dir: str | None) -> dict[str, np.ndarray]:
    from dbench.codes import CodeTable
    from dbench.datasets import get_dataset
    from dbench.encoders import load_encoder

    spec = OnnxEncoder(artifact) if kind == "onnx" else artifact
    loaded = load_encoder(spec)
    ds = get_dataset(dataset, data_dir=data_dir)

    table = CodeTable(ds, loaded.encode_arrays, batch_size=batch_size)
    table.ensure(indices)
    out = {"indices": indices, "codes": table.lookup(indices)}
    if table.has_logvar:
        out["logvar"] = table.lookup(indices, part="logvar")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dbench-worker")
    parser.add_argument("artifact")
    parser.add_argument("kind", choices=("torchscript", "onnx", "python"))
    parser.add_argument("dataset")
    parser.add_argument("indices", help=".npy file of observation indices")
    parser.add_argument("out", help=".npz file to write codes to")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    try:
        indices = np.load(args.indices).astype(np.int64)
        result = encode_queries(args.artifact, args.kind, args.dataset, indices,
                                batch_size=args.batch_size, data_dir=args.data_dir)
        tmp = Path(args.out).with_suffix(".tmp.npz")
        np.savez(tmp, **result)  # type: ignore[arg-type]  # mypy matches **result against allow_pickle: bool
        os.replace(tmp, args.out)
    except MemoryError:
        print(f"{PREFIX} exceeded the memory limit", file=sys.stderr)
        return 3
    except Exception as exc:  # noqa: BLE001 - the scorer records one line and carries on
        text = (str(exc).strip().splitlines() or [""])[0]
        lowered = text.lower()
        if any(sign in lowered for sign in ("memoryerror", "can't allocate memory", "unable to allocate", "out of memory")):
            print(f"{PREFIX} exceeded the memory limit ({text[:200]})", file=sys.stderr)
        else:
            print(f"{PREFIX} {exc.__class__.__name__}: {text[:300]}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Refusing ONNX models outside the standard operator set; runs inside the sandbox only.

Before onnxruntime sees a model: every node of the main graph, of every subgraph (``If``, ``Loop``,
``Scan`` bodies) and of every model-local function must be in a standard domain (:data:`DOMAINS`:
the ONNX operator set and ONNX-ML; no ``com.microsoft`` contrib ops, no custom-op domains), or call a
local function whose own nodes pass the same check. Every tensor stored as *external data* must name
a relative file inside the submission folder (no absolute paths, no ``..``, no links), and its
offset and length must lie within that file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from dbench.errors import EncoderError

#: Operator domains an ONNX submission may use.
DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
_HOW = "export with the standard ONNX operator set only (torch.onnx.export does by default)"


def check_onnx(path: Path, *, root: Path) -> None:
    """Refuse ``path`` (an ``.onnx`` file inside the submission folder ``root``) unless it passes the checks."""
    try:
        import onnx
    except ImportError:
        raise EncoderError("ONNX submissions need the onnx package in the scorer's environment; pip install onnx") from None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf reports a bad file in several types
        raise EncoderError(f"{path.name}: not a readable ONNX model ({exc.__class__.__name__}); "
                           "export it with torch.onnx.export") from None
    for opset in model.opset_import:
        if opset.domain not in DOMAINS:
            raise EncoderError(f"{path.name}: imports operator domain {opset.domain!r}; "
                               f"only standard domains are allowed ({_HOW})")
    local = {(f.domain, f.name): f for f in model.functions}
    for where, node in _nodes(model.graph, local):
        if node.domain not in DOMAINS and (node.domain, node.op_type) not in local:
            raise EncoderError(f"{path.name}: operator {node.domain}::{node.op_type} (in {where}) is not a standard "
                               f"ONNX operator; {_HOW}")
    for tensor in _tensors(model, local):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            _check_external(path, root, tensor)


def _nodes(graph: Any, local: dict, where: str = "the main graph") -> Iterator[tuple[str, Any]]:
    stack = [(where, graph.node)]
    seen_functions: set[tuple[str, str]] = set()
    while stack:
        label, nodes = stack.pop()
        for node in nodes:
            yield label, node
            for attr in node.attribute:
                for sub in [attr.g] if attr.HasField("g") else []:
                    stack.append((f"a subgraph of {node.op_type}", sub.node))
                for sub in attr.graphs:
                    stack.append((f"a subgraph of {node.op_type}", sub.node))
            key = (node.domain, node.op_type)
            if key in local and key not in seen_functions:
                seen_functions.add(key)
                stack.append((f"function {node.op_type}", local[key].node))


def _tensors(model: Any, local: dict) -> Iterator[Any]:
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors
                if attr.HasField("g"):
                    graphs.append(attr.g)
                graphs.extend(attr.graphs)
    for function in local.values():
        for node in function.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t


def _check_external(path: Path, root: Path, tensor: Any) -> None:
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    name = f"{path.name}: tensor {tensor.name[:60]!r} external data {location[:80]!r}"
    relative = PurePosixPath(location)
    if not location or relative.is_absolute() or ".." in relative.parts or "\\" in location or "\0" in location:
        raise EncoderError(f"{name}: must be a relative file name inside the submission")
    target = path.parent.joinpath(*relative.parts)
    try:
        resolved = target.resolve(strict=True)
    except (OSError, RuntimeError):
        raise EncoderError(f"{name}: no such file in the submission") from None
    if target.is_symlink() or not resolved.is_file() or not resolved.is_relative_to(root.resolve()):
        raise EncoderError(f"{name}: must be a regular file inside the submission")
    size = os.stat(resolved).st_size
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else size - offset
    except ValueError:
        raise EncoderError(f"{name}: offset/length are not integers") from None
    if offset < 0 or length < 0 or offset + length > size:
        raise EncoderError(f"{name}: offset {offset} + length {length} lies outside the {size}-byte file")


__all__ = ["DOMAINS", "check_onnx"]

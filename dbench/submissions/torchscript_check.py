"""Refusing TorchScript modules that do anything but tensor maths; runs inside the sandbox only.

Defence in depth behind the sandbox: a TorchScript file is a program, and TorchScript can read and
write files (``torch.from_file``), print, fork tasks and call custom C++ classes. Two checks:

1. :func:`check_archive`, before ``torch.jit.load``: the archive's code must not define
   ``__setstate__`` (TorchScript runs it *while loading*, before anything could inspect it) and must
   not name ``torch.classes`` (custom C++ classes).
2. :func:`check_module`, after loading: every method of every submodule (and every forward hook),
   inlined, walked through all nested blocks; each operator must be on :data:`ALLOWED_ATEN` (or be
   the in-place ``name_`` variant of one) or on :data:`ALLOWED_PRIM`. Any other operator, namespace or
   type is refused with one line naming it. ``prim::Print`` (a ``print`` in the model) is refused;
   ``aten::warn`` is allowed because torch's own layers (``nn.MultiheadAttention``,
   ``F.interpolate``) contain it: it only reaches the sandbox's capped stderr.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dbench.errors import EncoderError

_HOW = "export the encoder with tensor operations only (see docs/submissions.md for the allowed operators)"

#: aten operators allowed: tensor maths, shapes, creation, neural-network layers, TorchScript scalars.
ALLOWED_ATEN = frozenset([
    "abs", "absolute", "acos", "acosh", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d", "add", "add_", "addbmm", "addcdiv",
    "addcmul", "addmm", "addmv", "affine_grid_generator", "all", "allclose", "alpha_dropout", "amax", "amin",
    "angle", "any", "append", "arange", "argmax", "argmin", "argsort", "asin", "asinh", "atan", "atan2",
    "atanh", "avg_pool1d", "avg_pool2d", "avg_pool3d", "baddbmm", "batch_norm", "bernoulli", "bilinear",
    "bitwise_and", "bitwise_not", "bitwise_or", "bitwise_xor", "bmm", "broadcast_tensors", "broadcast_to",
    "cat", "ceil", "celu", "chunk", "clamp", "clamp_", "clamp_max", "clamp_min", "clip", "clone", "col2im",
    "concat", "concatenate", "constant_pad_nd", "contiguous", "conv1d", "conv2d", "conv3d",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "convolution", "_convolution", "copy_",
    "copysign", "cos", "cosh", "cosine_similarity", "count_nonzero", "cross", "cummax", "cummin", "cumprod",
    "cumsum", "deg2rad", "detach", "diag", "diag_embed", "diagonal", "digamma", "dim", "dist", "div", "div_",
    "divide", "dot", "dropout", "dropout_", "einsum", "elu", "elu_", "embedding", "empty", "empty_like", "eq",
    "equal", "erf", "erfc", "erfinv", "exp", "exp2", "expand", "expand_as", "expm1", "extend", "eye",
    "feature_alpha_dropout", "feature_dropout", "fill_", "flatten", "flip", "fliplr", "flipud", "float_power",
    "floor", "floor_divide", "floordiv", "fmax", "fmin", "fmod", "frac", "full", "full_like", "gather", "gcd",
    "ge", "gelu", "glu", "grid_sampler", "group_norm", "gt", "hardshrink", "hardsigmoid", "hardswish",
    "hardtanh", "hardtanh_", "hstack", "hypot", "im2col", "index", "index_add", "index_copy", "index_fill",
    "index_put", "index_put_", "index_select", "insert", "instance_norm", "is_floating_point", "isclose",
    "isfinite", "isinf", "isnan", "item", "kron", "kthvalue", "layer_norm", "lcm", "le", "leaky_relu",
    "leaky_relu_", "lerp", "lgamma", "linalg_norm", "linalg_vector_norm", "linear", "linspace", "log",
    "log10", "log1p", "log2", "log_sigmoid", "log_softmax", "logaddexp", "logaddexp2", "logcumsumexp",
    "logical_and", "logical_not", "logical_or", "logical_xor", "logit", "logspace", "logsumexp", "lt",
    "masked_fill", "masked_fill_", "masked_scatter", "masked_select", "matmul", "max", "max_pool1d",
    "max_pool1d_with_indices", "max_pool2d", "max_pool2d_with_indices", "max_pool3d",
    "max_pool3d_with_indices", "maximum", "mean", "median", "min", "minimum", "mish", "mm", "mode", "movedim",
    "mul", "mul_", "multinomial", "multiply", "mv", "nan_to_num", "nanmean", "nansum", "narrow", "ne", "neg",
    "negative", "new_empty", "new_full", "new_ones", "new_zeros", "nonzero", "norm", "normal", "normal_",
    "numel", "one_hot", "ones", "ones_like", "outer", "pad", "pairwise_distance", "pdist", "permute",
    "pixel_shuffle", "pixel_unshuffle", "pop", "pow", "prelu", "prod", "rad2deg", "rand", "rand_like",
    "randint", "randint_like", "randn", "randn_like", "randperm", "reciprocal", "reflection_pad1d",
    "reflection_pad2d", "reflection_pad3d", "relu", "relu6", "relu_", "remainder", "repeat",
    "repeat_interleave", "replication_pad1d", "replication_pad2d", "replication_pad3d", "reshape",
    "reshape_as", "roll", "rot90", "round", "rrelu", "rsqrt", "rsub", "scalar_tensor",
    "scaled_dot_product_attention", "scatter", "scatter_add", "scatter_reduce", "select", "selu", "sigmoid",
    "sigmoid_", "sign", "sgn", "silu", "silu_", "sin", "sinh", "size", "slice", "softmax", "softplus",
    "softshrink", "softsign", "sort", "split", "split_with_sizes", "sqrt", "square", "squeeze", "squeeze_",
    "stack", "std", "std_mean", "sub", "sub_", "subtract", "sum", "swapaxes", "swapdims", "sym_size", "t",
    "take", "tan", "tanh", "tanh_", "tanhshrink", "tensor", "tensor_split", "tensordot", "threshold",
    "threshold_", "tile", "topk", "transpose", "tril", "triu", "true_divide", "trunc", "type_as", "unbind",
    "unflatten", "unfold", "uniform_", "unique_consecutive", "unsqueeze", "unsqueeze_", "upsample_bicubic2d",
    "upsample_bilinear2d", "upsample_linear1d", "upsample_nearest1d", "upsample_nearest2d",
    "upsample_nearest3d", "upsample_trilinear3d", "var", "var_mean", "view", "view_as", "vstack", "where",
    "xlogy", "zero_", "zeros", "zeros_like", "Bool", "Float", "Int", "IntImplicit", "FloatImplicit",
    "ScalarImplicit", "Complex", "ComplexImplicit", "__and__", "__contains__", "__derive_index",
    "__getitem__", "__interpolate", "__is__", "__isnot__", "__not__", "__or__", "__range_length",
    "__upsample", "__upsample_bilinear", "__xor__", "_set_item", "_shape_as_tensor", "_size_if_not_equal",
    "cpu", "dict", "format", "items", "keys", "len", "list", "str", "to", "values",
    "__round_to_zero_floordiv", "_native_multi_head_attention", "_upsample_bicubic2d_aa",
    "_upsample_bilinear2d_aa", "_upsample_lanczos2d_aa", "_upsample_nearest_exact1d",
    "_upsample_nearest_exact2d", "_upsample_nearest_exact3d", "is_autocast_enabled", "is_grad_enabled", "warn"
])

#: prim operators allowed: control flow, constants, containers, attributes, type refinements.
ALLOWED_PRIM = frozenset([
    "Constant", "ListConstruct", "ListUnpack", "TupleConstruct", "TupleUnpack", "TupleIndex", "TupleSlice",
    "DictConstruct", "GetAttr", "SetAttr", "If", "Loop", "NumToTensor", "dtype", "device", "layout", "shape",
    "data", "requires_grad", "is_cuda", "is_cpu", "min", "max", "abs", "unchecked_cast",
    "unchecked_unwrap_optional", "isinstance", "RaiseException", "Uninitialized", "ModuleContainerIndex",
    "EnumName", "EnumValue", "tolist", "CreateObject", "AutogradZero", "is_quantized", "is_meta", "is_sparse",
    "is_mkldnn", "is_nested", "type"
])

_SETSTATE = re.compile(r"\bdef\s+__setstate__\b")
_MAX_CODE_BYTES = 64 << 20


def check_archive(path: Path) -> None:
    """Refuse a TorchScript archive that would run code while loading, or uses custom classes."""
    try:
        with zipfile.ZipFile(path) as zf:
            code = [i for i in zf.infolist() if "/code/" in f"/{i.filename}" and i.filename.endswith(".py")]
            if sum(i.file_size for i in code) > _MAX_CODE_BYTES:
                raise EncoderError(f"{path.name}: more than {_MAX_CODE_BYTES >> 20} MiB of TorchScript code; refused")
            for info in code:
                text = zf.read(info).decode("utf-8", "replace")
                if _SETSTATE.search(text):
                    raise EncoderError(f"{path.name}: defines __setstate__, which TorchScript runs while loading; "
                                       f"refused ({_HOW})")
                if "torch.classes" in text:
                    raise EncoderError(f"{path.name}: uses a custom C++ class (torch.classes); refused ({_HOW})")
    except zipfile.BadZipFile:
        raise EncoderError(f"{path.name}: not a TorchScript archive (not a zip file); save it with torch.jit.save") from None


def check_module(module: Any) -> None:
    """Refuse a loaded TorchScript module with any operator outside the allow-lists (one line naming it)."""
    import torch

    for where, graph in _graphs(module):
        graph = graph.copy()
        torch._C._jit_pass_inline(graph)
        for node in _nodes(graph.block()):
            kind = node.kind()
            namespace, _, name = kind.partition("::")
            if not _allowed(namespace, name):
                raise EncoderError(f"TorchScript operator {kind} (in {where}) is not allowed in a submission; {_HOW}")
            for value in node.outputs():
                type_name = str(value.type())
                if "torch.classes" in type_name or "__torch__.torch.classes" in type_name:
                    raise EncoderError(f"TorchScript custom class {type_name} (in {where}) is not allowed; {_HOW}")


def _allowed(namespace: str, name: str) -> bool:
    if namespace == "prim":
        return name in ALLOWED_PRIM
    # An in-place variant (``relu_``) of an allowed operator is the same maths on its own input.
    return namespace == "aten" and (name in ALLOWED_ATEN or (name.endswith("_") and name[:-1] in ALLOWED_ATEN
                                                             and not name.startswith("_")))


def _graphs(module: Any) -> Iterator[tuple[str, Any]]:
    for name, sub in module.named_modules():
        label = name or "the top module"
        for method in sub._c._method_names():
            yield f"{label}.{method}", sub._c._get_method(method).graph
        for getter in ("_get_forward_hooks", "_get_forward_pre_hooks"):
            for hook in getattr(sub._c, getter, list)():
                yield f"{label} hook {getattr(hook, 'name', '?')}", hook.graph


def _nodes(block: Any) -> Iterator[Any]:
    stack = [block]
    while stack:
        for node in stack.pop().nodes():
            yield node
            stack.extend(node.blocks())


__all__ = ["ALLOWED_ATEN", "ALLOWED_PRIM", "check_archive", "check_module"]

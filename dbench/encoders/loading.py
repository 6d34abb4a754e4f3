"""``load_encoder``: turn any supported encoder spec into a :class:`~dbench.encoders.loaded.LoadedEncoder`.

Accepted specs, tried in this order:

1. A ``LoadedEncoder`` (returned as a copy with the requested options).
2. A path (``str`` or ``os.PathLike``):
   * ``*.py`` -- a Python file. It is imported under a unique module name with its own directory on
     ``sys.path`` during the import (so it can import its neighbours), then the first of these is used:
     ``get_encoder()`` (called with no arguments; returns any in-memory encoder below), a module-level
     ``encoder`` object, a module-level ``encode`` function.
   * ``*.pt`` / ``*.pth`` / ``*.ts`` / ``*.jit`` -- a TorchScript file (``torch.jit.load``).
   * ``*.pt2`` -- a ``torch.export`` program (``torch.export.load(path).module()``), exported with a
     dynamic batch dimension.
   * a directory containing ``encoder.pt`` -- a reference-model run directory; ``encoder.pt`` is a
     TorchScript module returning ``(mean, logvar)``.
3. A ``torch.nn.Module`` (eval mode, ``inference_mode``, inputs on the module's device).
4. An object with a callable ``encode`` (the :class:`~dbench.encoders.base.Encoder` protocol).
5. A plain callable ``f(images) -> codes``.

Anything else is an :class:`~dbench.errors.EncoderError`.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from dbench.encoders.adapters import (
    FunctionEncoder,
    TorchModuleEncoder,
    is_torch_module,
)
from dbench.encoders.containment import user_code
from dbench.encoders.fingerprint import (
    USER_MODULE_PREFIX,
    file_fingerprint,
    file_sha256,
    module_fingerprint,
)
from dbench.encoders.loaded import DEFAULT_PROBE_SHAPE, LoadedEncoder
from dbench.encoders.validation import describe_exception
from dbench.errors import EncoderError

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit")
EXPORTED_PROGRAM_SUFFIX = ".pt2"
RUN_DIR_ENCODER_FILE = "encoder.pt"

# Distinguishes repeated imports of the same file within one process.
_import_counter = itertools.count()


def load_encoder(
    spec: Any,
    *,
    device: Any = None,
    channels_last: bool | None = None,
    probe_shape: tuple[int, int, int] = DEFAULT_PROBE_SHAPE,
) -> LoadedEncoder:
    """Load an encoder from a file, run directory or in-memory object (see the module docstring).

    Parameters
    ----------
    spec
        Path to a Python or TorchScript file, a run directory with ``encoder.pt``, a torch module,
        an object with ``encode``, or a callable.
    device
        torch device for torch encoders: in-memory modules are moved there when given (else they stay
        where they are); TorchScript files load there (default: CUDA when available, else CPU).
        Ignored for other encoders.
    channels_last : bool, optional
        Override the encoder's own ``channels_last`` attribute (default: the attribute, else False).
    probe_shape : (C, H, W)
        Image shape of the probe batch that fingerprints in-memory encoders (the dataset's
        observation shape; dSprites' ``(1, 64, 64)`` by default).
    """
    if isinstance(spec, LoadedEncoder):
        return spec.with_options(channels_last=channels_last)
    # Loading runs user code (the file's import, get_encoder(), a module's eval/to/state_dict, its
    # attributes): whatever escapes it is one line naming the encoder.
    label = spec_label(spec)
    try:
        with user_code(f"loading encoder {label}", "fix the encoder so that loading it returns an encoder"):
            return _load(spec, device=device, channels_last=channels_last, probe_shape=probe_shape)
    except (EncoderError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - a user object failing while being adapted becomes one line
        raise EncoderError(f"loading encoder {label} raised {describe_exception(exc)}; fix the encoder") from None


def spec_label(spec: Any) -> str:
    """How messages name an encoder spec: the path as given, else the object's name."""
    if isinstance(spec, (str, os.PathLike)):
        return str(spec)
    try:
        return _object_name(spec)
    except Exception:  # noqa: BLE001 - a user object whose attributes fail still gets a label
        return type(spec).__name__


def _load(spec: Any, *, device: Any, channels_last: bool | None, probe_shape: tuple[int, int, int]) -> LoadedEncoder:
    options = {"probe_shape": probe_shape}
    if isinstance(spec, str) and not spec.strip():
        raise EncoderError(
            "the encoder spec is an empty string; give the path of a Python or TorchScript file or a run directory"
        )
    if isinstance(spec, (str, os.PathLike)):
        # Absolute now: the file's own code may change the working folder while it is imported.
        return _load_path(Path(spec).absolute(), device=device, channels_last=channels_last, options=options)
    encoder, kind = _adapt_object(spec, device=device, who=_object_name(spec))
    fingerprint = module_fingerprint(spec) if kind == "torch-module" else None
    return LoadedEncoder(
        encoder,
        name=_object_name(spec),
        kind=kind,
        channels_last=_channels_last(channels_last, spec),
        fingerprint=fingerprint,
        **options,
    )


def _channels_last(override: bool | None, *declared_on: Any) -> bool:
    """The explicit override, else the first ``channels_last`` attribute among ``declared_on``, else False."""
    if override is not None:
        return bool(override)
    for source in declared_on:
        if hasattr(source, "channels_last"):
            return bool(source.channels_last)
    return False


def _object_name(obj: Any) -> str:
    name = getattr(obj, "name", None)
    if isinstance(name, str) and name:
        return name
    if callable(obj) and hasattr(obj, "__name__"):
        return obj.__name__
    return type(obj).__name__


def _adapt_object(obj: Any, *, device: Any, who: str) -> tuple[Any, str]:
    """An object with ``encode(images)`` for an in-memory spec, and the name of its kind."""
    if isinstance(obj, type):
        raise EncoderError(f"got the class {obj.__name__} instead of an encoder; pass an instance, e.g. {obj.__name__}()")
    if is_torch_module(obj):
        return TorchModuleEncoder(obj, device=device), "torch-module"
    if callable(getattr(obj, "encode", None)):
        return obj, "encoder-object"
    if callable(obj):
        return FunctionEncoder(obj), "callable"
    raise EncoderError(
        f"cannot use {who} (a {type(obj).__name__}) as an encoder; give a Python file, a TorchScript file, "
        "a run directory with encoder.pt, a torch module, an object with encode(images), or a function"
    )


def _load_path(path: Path, *, device: Any, channels_last: bool | None, options: dict[str, Any]) -> LoadedEncoder:
    """Load a Python file, TorchScript file, torch.export file or run directory."""
    if path.is_dir():
        encoder_file = path / RUN_DIR_ENCODER_FILE
        if not encoder_file.is_file():
            raise EncoderError(
                f"directory {path} has no {RUN_DIR_ENCODER_FILE}; give the run directory of a trained reference model, "
                "or the path of a Python or TorchScript encoder file"
            )
        module, name, kind, hashed = _load_torchscript(encoder_file, device), path.resolve().name, "run-dir", encoder_file
    elif not path.is_file():
        raise EncoderError(f"encoder file {path} does not exist; check the path")
    elif path.suffix.lower() == ".py":
        return _load_python_file(path, device=device, channels_last=channels_last, options=options)
    elif path.suffix.lower() in TORCHSCRIPT_SUFFIXES:
        module, name, kind, hashed = _load_torchscript(path, device), path.stem, "torchscript", path
    elif path.suffix.lower() == EXPORTED_PROGRAM_SUFFIX:
        module, name, kind, hashed = _load_exported_program(path), path.stem, "torch-export", path
    else:
        raise EncoderError(
            f"cannot load encoder file {path.name}: unknown suffix {path.suffix or '(none)'}; "
            f"use a Python file (.py), a TorchScript file ({', '.join(TORCHSCRIPT_SUFFIXES)}), "
            f"a torch.export file ({EXPORTED_PROGRAM_SUFFIX}) or a run directory"
        )
    # TorchScript already loaded onto `device`; an exported program is moved only when one is given.
    return LoadedEncoder(
        TorchModuleEncoder(module, device=device if kind == "torch-export" else None),
        name=name,
        kind=kind,
        channels_last=_channels_last(channels_last, module),
        fingerprint=file_fingerprint(hashed),
        **options,
    )


def _load_python_file(path: Path, *, device: Any, channels_last: bool | None, options: dict[str, Any]) -> LoadedEncoder:
    module = _import_python_file(path)
    obj = _encoder_from_module(module, path)
    encoder, _ = _adapt_object(obj, device=device, who=f"the encoder from {path.name}")
    return LoadedEncoder(
        encoder,
        name=path.stem,
        kind="python-file",
        channels_last=_channels_last(channels_last, obj, module),
        fingerprint=file_fingerprint(path, extra=_declared_identity(obj)),
        **options,
    )


def _import_python_file(path: Path) -> ModuleType:
    """Import ``path`` as a fresh module, with its directory first on ``sys.path`` during the import."""
    module_name = f"{USER_MODULE_PREFIX}{file_sha256(path)[:12]}_{next(_import_counter)}"
    import_spec = importlib.util.spec_from_file_location(module_name, path)
    if import_spec is None or import_spec.loader is None:
        raise EncoderError(f"cannot import {path} as a Python module; check that it is a .py file")
    module = importlib.util.module_from_spec(import_spec)
    directory = str(path.resolve().parent)
    sys.path.insert(0, directory)
    # Registered before execution so that dataclasses, pickling and relative lookups inside the file work.
    sys.modules[module_name] = module
    try:
        with user_code(f"importing {path.name}", "fix the file: importing it must define the encoder, not end the process"):
            try:
                import_spec.loader.exec_module(module)
            except Exception as exc:  # noqa: BLE001 - a broken user file becomes one line
                raise EncoderError(f"importing {path.name} raised {describe_exception(exc)}; fix the file") from None
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    finally:
        # Remove the entry this import added (the file may have changed sys.path itself meanwhile).
        if directory in sys.path:
            sys.path.remove(directory)
    return module


def _encoder_from_module(module: ModuleType, path: Path) -> Any:
    """Apply the Python-file rule: ``get_encoder()``, else ``encoder``, else ``encode``."""
    get_encoder = getattr(module, "get_encoder", None)
    if callable(get_encoder):
        with user_code(f"get_encoder() in {path.name}", "make it return the encoder instead of ending the process"):
            try:
                encoder = get_encoder()
            except Exception as exc:  # noqa: BLE001 - the user's factory failing becomes one line
                raise EncoderError(f"get_encoder() in {path.name} raised {describe_exception(exc)}; fix the file") from None
        if encoder is None:
            raise EncoderError(f"get_encoder() in {path.name} returned None; make it return the encoder")
        return encoder
    if getattr(module, "encoder", None) is not None:
        return module.encoder
    if callable(getattr(module, "encode", None)):
        return module.encode
    raise EncoderError(
        f"{path.name} defines none of get_encoder(), encoder, encode; "
        "define get_encoder() returning an object with encode(images) -> codes"
    )


def _declared_identity(obj: Any) -> str | None:
    """What a Python file's encoder adds to the file hash: its weights, since the file may load them.

    A string attribute ``fingerprint`` on the object wins; a torch module contributes the hash of its
    parameters and buffers; otherwise only the file's bytes identify the encoder.
    """
    declared = getattr(obj, "fingerprint", None)
    if isinstance(declared, str) and declared:
        return declared
    if is_torch_module(obj):
        return module_fingerprint(obj)
    return None


def _import_torch(path: Path) -> Any:
    try:
        import torch
    except ImportError:
        raise EncoderError(f"loading {path.name} needs torch, which is not installed; pip install torch") from None
    return torch


def _load_torchscript(path: Path, device: Any) -> Any:
    torch = _import_torch(path)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        with warnings.catch_warnings():
            # TorchScript is deprecated in recent torch but still the format of trained runs; the
            # warning would only confuse a user who did nothing wrong.
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location=device)
    except Exception as exc:  # noqa: BLE001 - torch reports a bad archive in several exception types
        if _saved_with_torch_save(path):
            raise EncoderError(
                f"{path.name} was saved with torch.save (a state_dict or a pickled model), not as TorchScript, so "
                "dbench cannot rebuild the network from it; write a Python encoder file whose get_encoder() builds "
                f"the model and loads {path.name} (docs/encoders.md), or save it with "
                "torch.jit.save(torch.jit.script(model), path)"
            ) from None
        raise EncoderError(
            f"cannot load {path.name} as TorchScript ({describe_exception(exc)}); save the model with "
            "torch.jit.save(torch.jit.script(model), path), or give a Python file defining get_encoder()"
        ) from None


def _saved_with_torch_save(path: Path) -> bool:
    """Whether ``path`` looks like a ``torch.save`` file: a zip with a pickle but no TorchScript code, or a bare pickle."""
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
            has_code = any(n.endswith("constants.pkl") or "/code/" in n for n in names)
            return any(n.endswith("data.pkl") for n in names) and not has_code
        with open(path, "rb") as handle:
            return handle.read(1) == b"\x80"  # the pickle protocol marker of the legacy format
    except OSError:
        return False


def _load_exported_program(path: Path) -> Any:
    torch = _import_torch(path)
    try:
        return torch.export.load(str(path)).module()
    except Exception as exc:  # noqa: BLE001 - torch reports a bad archive in several exception types
        raise EncoderError(
            f"cannot load {path.name} as a torch.export program ({describe_exception(exc)}); save the model with "
            "torch.export.save(torch.export.export(model, (example_images,)), path)"
        ) from None

"""numba for dbench's compiled kernels: one decorator, and compiled code cached in a user folder.

``@kernel()`` is ``numba.njit(nogil=True)`` with an on-disk cache that lives in the user's cache
folder, never next to the source. numba's own ``cache=True`` writes ``.nbi`` / ``.nbc`` files into the
package's ``__pycache__``: inside an installed ``site-packages/dbench`` they outlive an uninstall and
the leftover folder is then imported as a namespace package, breaking ``dbench``.

The folder is ``$DBENCH_CACHE_DIR/numba``, else ``$NUMBA_CACHE_DIR`` (numba's own setting, if the
user chose one), else ``$XDG_CACHE_HOME/dbench/numba``, else ``~/.cache/dbench/numba``. If it cannot
be created or written, kernels are compiled in every process and nothing is written to disk. A
cache entry that cannot be read back (a truncated or corrupt file, another numba's format) is
dropped and the kernel recompiled; a cache that cannot be written is switched off. The cache never
stops a computation.

How: numba picks a cache's folder when the cache object is created, and its
``UserProvidedCacheLocator`` reads ``numba.config.CACHE_DIR`` then. :func:`kernel` compiles nothing
at import: it builds the dispatcher without a cache, then creates the cache itself with
``CACHE_DIR`` set to dbench's folder for that moment only (the user need not set
``NUMBA_CACHE_DIR`` before numba is imported, and other numba users are unaffected), and keeps it
only if it really points into that folder (numba falls back to ``__pycache__`` when a folder is not
writable).

Without numba the decorator returns the plain Python function and :data:`prange` is ``range``, so
kernel modules import everywhere; callers check :data:`HAVE_NUMBA` before running them.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:  # numba makes the tree kernels fast; without it callers use scikit-learn instead.
    import numba
    from numba import get_num_threads, prange

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    HAVE_NUMBA = False
    prange = range  # type: ignore[misc]  # numba types prange as a class; range is its stand-in

    def get_num_threads() -> int:
        return 1


CACHE_DIR_ENV = "DBENCH_CACHE_DIR"


def numba_cache_folder() -> Path | None:
    """Where compiled kernels are cached: an absolute folder, or None when there is no usable one.

    ``$DBENCH_CACHE_DIR/numba``, else ``$NUMBA_CACHE_DIR``, else ``$XDG_CACHE_HOME/dbench/numba``
    (an absolute ``XDG_CACHE_HOME`` only, as the XDG specification says), else
    ``~/.cache/dbench/numba``. The folder is created (owner-only) and must accept a file.
    """
    if os.environ.get(CACHE_DIR_ENV):
        folder = Path(os.environ[CACHE_DIR_ENV]).expanduser() / "numba"
    elif os.environ.get("NUMBA_CACHE_DIR"):
        folder = Path(os.environ["NUMBA_CACHE_DIR"]).expanduser()
    elif os.environ.get("XDG_CACHE_HOME") and os.path.isabs(os.environ["XDG_CACHE_HOME"]):
        folder = Path(os.environ["XDG_CACHE_HOME"]) / "dbench" / "numba"
    else:
        try:
            folder = Path.home() / ".cache" / "dbench" / "numba"
        except (RuntimeError, KeyError):  # no home directory to be found
            return None
    try:
        folder = folder.absolute()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()  # numba's own writability test
    except (OSError, ValueError):  # not creatable, not writable, or an unusable path
        return None
    return folder


if HAVE_NUMBA:
    from numba.core.caching import FunctionCache
    from numba.core.dispatcher import Dispatcher

    class _UserFolderCache(FunctionCache):
        """numba's function cache, which never fails the call it serves.

        An entry that cannot be loaded is dropped (the index is reset, so the fresh compilation
        replaces it); when the folder cannot be written, caching is switched off for the kernel.
        """

        def load_overload(self, sig: Any, target_context: Any) -> Any:
            try:
                return super().load_overload(sig, target_context)
            except Exception:  # noqa: BLE001 - whatever unpickling a corrupt, truncated or foreign file raises
                try:
                    self.flush()  # an empty index: the fresh compilation is saved in its place
                except OSError:
                    self.disable()
                return None

        def save_overload(self, sig: Any, data: Any) -> None:
            try:
                super().save_overload(sig, data)
            except Exception:  # noqa: BLE001 - folder gone, full or read-only, or unpicklable: cache nothing
                self.disable()


def _user_folder_cache(function: Callable[..., Any], folder: Path) -> Any:
    """numba's cache for ``function`` kept in ``folder``, or None if numba would put it elsewhere."""
    config: Any = numba.config  # its settings are set at import from the environment, untyped
    previous = config.CACHE_DIR
    config.CACHE_DIR = str(folder)
    try:
        cache = _UserFolderCache(function)
    except (RuntimeError, OSError):  # no locator accepted the function (e.g. source file not on disk)
        return None
    finally:
        config.CACHE_DIR = previous
    if not Path(cache.cache_path).resolve().is_relative_to(folder.resolve()):
        return None  # numba fell back to another locator (e.g. __pycache__ next to the source)
    return cache


@functools.cache
def _kernel_cache_folder() -> Path | None:
    """:func:`numba_cache_folder`, resolved once per process (on the first kernel defined)."""
    return numba_cache_folder()


def kernel(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(nogil=True, **options)`` whose compiled code is cached in :func:`numba_cache_folder`.

    Compilation happens on the first call, as with ``njit``. Without numba the function is returned
    unchanged.
    """

    def decorate(function: Callable[..., Any]) -> Any:
        if not HAVE_NUMBA:
            return function
        dispatcher = numba.njit(nogil=True, **options)(function)
        if not isinstance(dispatcher, Dispatcher):  # NUMBA_DISABLE_JIT=1: the plain function, nothing to cache
            return dispatcher
        folder = _kernel_cache_folder()
        cache = None if folder is None else _user_folder_cache(function, folder)
        if cache is not None:
            # What Dispatcher.enable_caching() does, with dbench's folder (a private attribute numba does not type).
            dispatcher._cache = cache  # type: ignore[attr-defined]
        return dispatcher

    return decorate


__all__ = ["CACHE_DIR_ENV", "HAVE_NUMBA", "get_num_threads", "kernel", "numba_cache_folder", "prange"]

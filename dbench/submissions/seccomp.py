"""A seccomp filter for the bubblewrap sandbox: kernel interfaces no encoder needs answer ``EPERM``.

The sandbox shares the scorer's kernel, so every system call a submission can make is attack surface.
This filter refuses the ones that have been the road to kernel exploits or that reach outside the
sandbox's own processes, and that no Python, NumPy, torch or onnxruntime encoder uses: tracing and
other processes' memory (``ptrace``, ``process_vm_*``), the kernel keyring, ``perf_event_open``,
``bpf``, ``userfaultfd``, ``io_uring``, module and kexec loading, mounting, namespaces
(``unshare``/``setns``; bubblewrap's ``--disable-userns`` already stops new user namespaces),
``open_by_handle_at``, ``personality``, swap, reboot, accounting and the kernel log. Every other call is
allowed, so ordinary programs run unchanged. A call from another system-call ABI (32-bit ``int 0x80``
on x86_64) kills the process (libseccomp's default for a foreign architecture).

The BPF program is built with libseccomp (``libseccomp.so.2``, present wherever systemd or bubblewrap's
own dependencies are) through :mod:`ctypes`, once per scorer, and handed to ``bwrap --seccomp FD``.
Where libseccomp is missing, or bubblewrap cannot load the filter (checked once,
:func:`dbench.submissions.sandbox.seccomp_problem`), the sandbox runs without it, and the result
record says so (``environment.sandbox.seccomp``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from functools import lru_cache

#: System calls refused inside the sandbox (names as libseccomp knows them; unknown ones are skipped).
DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "keyctl", "add_key", "request_key",
    "perf_event_open", "bpf", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
    "mount_setattr", "unshare", "setns",
    "open_by_handle_at", "name_to_handle_at", "personality", "swapon", "swapoff", "reboot", "acct", "syslog",
    "quotactl", "lookup_dcookie", "iopl", "ioperm", "vhangup", "settimeofday", "clock_settime", "adjtimex",
)

_ACT_ALLOW = 0x7FFF0000
_ACT_ERRNO = 0x00050000


@lru_cache(maxsize=1)
def program() -> bytes | None:
    """The filter as a BPF program for ``bwrap --seccomp``, or None where libseccomp is unavailable."""
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.restype = ctypes.c_int
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_export_bpf.restype = ctypes.c_int
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(_ACT_ALLOW)
    if not ctx:
        return None
    try:
        for call in DENIED:
            number = lib.seccomp_syscall_resolve_name(call.encode())
            if number < 0:  # not a system call on this architecture
                continue
            if lib.seccomp_rule_add(ctx, _ACT_ERRNO | errno.EPERM, number, 0) != 0:
                return None
        fd = os.memfd_create("dbench-seccomp", os.MFD_CLOEXEC)
        try:
            if lib.seccomp_export_bpf(ctx, fd) != 0:
                return None
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
        finally:
            os.close(fd)
        data = b"".join(chunks)
        return data if data and len(data) % 8 == 0 else None  # whole struct sock_filter instructions
    finally:
        lib.seccomp_release(ctx)


def program_fd() -> int | None:
    """A fresh file descriptor (close-on-exec unset by the caller's ``pass_fds``) holding :func:`program`."""
    data = program()
    if data is None:
        return None
    fd = os.memfd_create("dbench-seccomp", os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


__all__ = ["DENIED", "program", "program_fd"]

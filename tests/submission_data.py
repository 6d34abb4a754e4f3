"""Shared pieces of the submission tests: a tiny protocol, encoders, submission folders, the isolation to use."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dbench.submissions.sandbox import isolation_problem

PROTOCOL = textwrap.dedent(
    """
    name: tiny_challenge
    version: 1
    description: test protocol on the tiny dataset
    datasets: [tiny_dsprites]
    representation: mean
    seeds: [0]
    backend: numpy
    batch_size: 128
    metrics:
      mig: {n_train: 300}
      sap: {n_train: 200, n_test: 100}
    """
)

GOOD_ENCODER = """
import numpy as np

def encode(images):
    # centroid and area of the sprite: a deterministic, informative code
    n = images.shape[0]
    img = images.reshape(n, 64, 64)
    ys, xs = np.mgrid[0:64, 0:64]
    mass = img.sum(axis=(1, 2)) + 1e-6
    cx = (img * xs).sum(axis=(1, 2)) / mass
    cy = (img * ys).sum(axis=(1, 2)) / mass
    return np.stack([cx, cy, mass], axis=1)
"""

#: Why the bubblewrap sandbox cannot run here (None where it can): attack tests skip only then.
BWRAP_PROBLEM = isolation_problem("bwrap")
needs_bwrap = pytest.mark.skipif(BWRAP_PROBLEM is not None, reason=f"bubblewrap cannot run here: {BWRAP_PROBLEM}")
#: Functional tests run sandboxed where they can and as plain subprocesses elsewhere.
ISOLATION = "bwrap" if BWRAP_PROBLEM is None else "none"


def make_submission(root: Path, name: str, files: dict[str, str | bytes], *, team: str | None = None,
                    meta: str | bytes | None = None) -> Path:
    """A submission folder ``root/name`` with a metadata file (``meta`` replaces the default one)."""
    folder = root / name
    folder.mkdir(parents=True)
    if meta is None:
        meta = f"name: {name}\nteam: {team or 'team-' + name}\ndescription: test\ncode_url: ''\n"
    (folder / "submission.yaml").write_bytes(meta.encode() if isinstance(meta, str) else meta)
    for fname, content in files.items():
        target = folder / fname
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    return folder


def protocol_file(folder: Path) -> Path:
    path = folder / "tiny_challenge.yaml"
    path.write_text(PROTOCOL)
    return path


def write_zip_bomb(path: Path, members: dict[str, tuple[bytes, int]]) -> Path:
    """A zip whose members are ``prefix`` followed by ``n_zeros`` zero bytes, written without ever holding them.

    Byte-aligned deflate blocks of a 4 MiB run of zeros are made once and repeated (each block refers
    to nothing before it, so the concatenation is a valid stream); CRCs are computed the same way.
    Sizes stay below 4 GiB (no zip64). A few MB on disk, gigabytes once decompressed.
    """
    import struct
    import zlib

    def block(data: bytes) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)

    chunk = bytes(4 << 20)
    chunk_block = block(chunk)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    local, central = bytearray(), bytearray()
    for name, (prefix, n_zeros) in members.items():
        full, rest = divmod(n_zeros, len(chunk))
        data = block(prefix) + chunk_block * full + (block(bytes(rest)) if rest else b"") + final
        crc = zlib.crc32(prefix)
        for _ in range(full):
            crc = zlib.crc32(chunk, crc)
        crc = zlib.crc32(bytes(rest), crc) & 0xFFFFFFFF
        size = len(prefix) + n_zeros
        encoded = name.encode()
        offset = len(local)
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), size, len(encoded), 0)
        local += encoded + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(data), size,
                               len(encoded), 0, 0, 0, 0, 0, offset) + encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(local), 0)
    path.write_bytes(bytes(local + central + end))
    return path

"""``dbench download``: against a small file served by an HTTP server on 127.0.0.1 that the test starts.

The files carry the official layout on a small grid (the loaders' own checks run, on that grid); the
server understands range requests, so resuming an interrupted download is tested too. No other
network is used.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from dbench._json import file_sha256
from dbench.datasets import download as dl
from dbench.datasets.dsprites import tiny_dsprites
from dbench.errors import DatasetError

TINY = tiny_dsprites()


def tiny_official_file(path: Path) -> bytes:
    """The tiny grid in the official dSprites file's layout (keys, dtypes, colour column), compressed."""
    from dbench.datasets import indices_to_factors, num_observations

    n = num_observations(TINY)
    factors = indices_to_factors(TINY, np.arange(n))
    np.savez_compressed(
        path,
        imgs=TINY.images(np.arange(n))[:, 0].astype(np.uint8),
        latents_classes=np.concatenate([np.zeros((n, 1), dtype=np.int64), factors], axis=1),
        latents_values=np.concatenate([np.ones((n, 1)), TINY.factor_values(factors)], axis=1),
    )
    return path.read_bytes()


class Server:
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1, with HTTP range requests; counts requests."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[dict[str, str]] = []
        self.cut_after: int | None = None  # send only this many bytes of a whole-file response, then close
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(dict(self.headers))
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                if self.headers.get("Range", "").startswith("bytes="):
                    start = int(self.headers["Range"][6:].rstrip("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                payload = body[start:]
                if outer.cut_after is not None and start == 0:
                    payload = payload[: outer.cut_after]
                self.wfile.write(payload)

            def log_message(self, *args):  # quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def tiny_dsprites_source(monkeypatch):
    """``dbench download dsprites`` checking the tiny grid instead of the official one."""
    entry = dataclasses.replace(dl.SOURCES["dsprites"], factor_sizes=TINY.factor_sizes)
    monkeypatch.setitem(dl.SOURCES, "dsprites", entry)
    return entry


@pytest.fixture
def payload(tmp_path_factory):
    return tiny_official_file(tmp_path_factory.mktemp("served") / "tiny.npz")


def test_download_checks_records_and_does_not_fetch_twice(tmp_path, tiny_dsprites_source, payload):
    lines = []
    with Server({"/d.npz": payload}) as server:
        done = dl.download("dsprites", data_dir=tmp_path, url=server.url("/d.npz"), progress=False, log=lines.append)
        target = tmp_path / "dsprites" / tiny_dsprites_source.filename  # disentanglement_lib's layout
        assert done.path == target and target.read_bytes() == payload and not done.already_there
        assert done.sha256 == file_sha256(target) and done.n_bytes == len(payload)
        manifest = json.loads((tmp_path / dl.MANIFEST).read_text())
        record = manifest["files"][f"dsprites/{tiny_dsprites_source.filename}"]
        assert record["sha256"] == done.sha256 and record["url"] == server.url("/d.npz") and record["recorded_utc"].endswith("Z")
        again = dl.download("dsprites", data_dir=tmp_path, url=server.url("/d.npz"), progress=False)
        assert again.already_there and again.sha256 == done.sha256 and len(server.requests) == 1
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no .part left


def test_an_interrupted_download_leaves_no_file_under_the_real_name_and_resumes(tmp_path, tiny_dsprites_source, payload):
    with Server({"/d.npz": payload}) as server:
        server.cut_after = len(payload) // 3
        with pytest.raises(DatasetError, match="rerun to resume"):
            dl.download("dsprites", data_dir=tmp_path, url=server.url("/d.npz"), progress=False)
        target = tmp_path / "dsprites" / tiny_dsprites_source.filename
        part = target.with_name(target.name + ".part")
        assert not target.exists() and part.stat().st_size == len(payload) // 3
        server.cut_after = None
        done = dl.download("dsprites", data_dir=tmp_path, url=server.url("/d.npz"), progress=False)
        assert server.requests[-1]["Range"] == f"bytes={len(payload) // 3}-"  # resumed, not restarted
        assert done.path.read_bytes() == payload and not part.exists()


def test_a_file_that_fails_the_layout_checks_is_not_kept(tmp_path, payload):
    # The real registry entry expects the official 737,280-image grid: the tiny file is refused.
    with Server({"/d.npz": payload}) as server, pytest.raises(DatasetError) as info:
        dl.download("dsprites", data_dir=tmp_path, url=server.url("/d.npz"), progress=False)
    message = str(info.value)
    assert "is not the official dsprites file" in message and "expected (737280, 64, 64)" in message
    assert "\n" not in message and not list((tmp_path / "dsprites").iterdir())


def test_http_errors_and_bad_urls_are_one_line(tmp_path, tiny_dsprites_source):
    with Server({}) as server, pytest.raises(DatasetError, match=r"HTTP 404 Not Found; check the URL"):
        dl.download("dsprites", data_dir=tmp_path, url=server.url("/missing.npz"), progress=False)
    with pytest.raises(DatasetError, match="only http"):
        dl.download("dsprites", data_dir=tmp_path, url="file:///etc/passwd", progress=False)
    with pytest.raises(DatasetError, match="no download for 'cifar'; dbench downloads: dsprites, shapes3d"):
        dl.download("cifar", data_dir=tmp_path)
    with pytest.raises(DatasetError, match=r"mpi3d_real: no public download location.*--url"):
        dl.download("mpi3d_real", data_dir=tmp_path)


def test_the_download_folder_follows_the_data_folder_variables(tmp_path, monkeypatch):
    monkeypatch.delenv("DBENCH_DATA_DIR", raising=False)
    monkeypatch.delenv("DISENTANGLEMENT_LIB_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert dl.download_dir() == tmp_path / "xdg" / "dbench"
    monkeypatch.setenv("DISENTANGLEMENT_LIB_DATA", str(tmp_path / "dlib"))
    assert dl.download_dir() == tmp_path / "dlib"
    monkeypatch.setenv("DBENCH_DATA_DIR", str(tmp_path / "db"))
    assert dl.download_dir() == tmp_path / "db" and dl.download_dir(tmp_path / "x") == tmp_path / "x"


def test_loaders_read_disentanglement_lib_s_data_folder(tmp_path, monkeypatch, payload):
    from dbench.datasets import get_dataset
    from dbench.datasets.official import OFFICIAL_FILENAME

    monkeypatch.delenv("DBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "nowhere"))
    (tmp_path / "dlib" / "dsprites").mkdir(parents=True)
    (tmp_path / "dlib" / "dsprites" / OFFICIAL_FILENAME).write_bytes(payload)
    monkeypatch.setenv("DISENTANGLEMENT_LIB_DATA", str(tmp_path / "dlib"))
    # Found there (then refused: the registry checks the official grid, and this file is the tiny one).
    with pytest.raises(DatasetError, match=r"expected \(737280, 64, 64\)"):
        get_dataset("dsprites_official")
    monkeypatch.delenv("DISENTANGLEMENT_LIB_DATA")
    with pytest.raises(DatasetError) as info:
        get_dataset("dsprites_official")
    message = str(info.value)
    assert "no data folder is set (--data-dir, $DBENCH_DATA_DIR or $DISENTANGLEMENT_LIB_DATA)" in message
    assert "run `dbench download dsprites`" in message and "in no data folder" not in message


def test_the_cli_downloads_and_says_where(tmp_path, tiny_dsprites_source, payload, capsys):
    from dbench._cli.main import main

    with Server({"/d.npz": payload}) as server:
        code = main(["download", "dsprites", "--data-dir", str(tmp_path), "--url", server.url("/d.npz"), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"{tmp_path / 'dsprites' / tiny_dsprites_source.filename}: downloaded and checked" in out
    assert "use it as dataset dsprites_official" in out and "sha256 " in out
    assert main(["download", "nope"]) == 2  # a usage error: nothing fetched
    assert "no download for 'nope'" in capsys.readouterr().err
    with Server({}) as server:  # a failed download is a part that failed
        assert main(["download", "dsprites", "--data-dir", str(tmp_path / "empty"), "--url", server.url("/gone.npz")]) == 1
    assert "HTTP 404" in capsys.readouterr().err


def test_the_help_names_real_downloads():
    from dbench._cli.main import build_parser

    text = build_parser()._subparsers._group_actions[0].choices["download"].format_help()
    for name in ("dsprites", "shapes3d", "mpi3d_toy", "mpi3d_realistic"):
        assert name in text and name in dl.SOURCES
    assert all(url.startswith("https://") for url in (e.url for e in dl.SOURCES.values()) if url)
    assert os.path.basename(dl.SOURCES["dsprites"].url) == dl.SOURCES["dsprites"].filename

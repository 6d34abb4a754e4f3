"""User code that ends, interrupts, forks or moves the process: contained, one line, the right exit code.

Issue 12's cases (``sys.exit(0)`` / ``os._exit(0)`` inside ``encode``, ``os.chdir`` with relative
paths) and the rest of their class: every way user code can leave (``SystemExit`` with any code,
``GeneratorExit``, a home-made ``BaseException``, ``KeyboardInterrupt``, ``os._exit``, a kill by a
signal), at every place user code runs (the file's import, ``get_encoder()``, ``encode``, reading the
returned object), plus ``os.fork`` and a thread that never ends. The command line is run as a user
runs it (``python -m dbench``, the supervised path); earlier results are checked intact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dbench.encoders import check_encoder, load_encoder
from dbench.errors import EncoderError

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--dataset", "tiny_dsprites", "--metrics", "mig", "--set", "mig.n_train=200", "--backend", "numpy"]
# A good encoder's body: a few pixels of each image as codes (deterministic, finite, not tiny).
GOOD = "import numpy as np\ndef _codes(images):\n    return images.reshape(images.shape[0], -1)[:, 1000:4000:300] + 0.5\n"


def dbench(*args: str, cwd: Path, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "dbench", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=environment)


def one_error_line(stderr: str) -> str:
    """The one ``dbench: error`` line (several metric lines may follow a failed encoder; no traceback)."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("dbench: error")]
    assert len(errors) == 1, stderr
    return errors[0]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


# -- the way out, at each place user code runs -------------------------------------------------------

EXITS = {
    "sys.exit(0)": ("import sys", "sys.exit(0)", "called sys.exit(0) (SystemExit)"),
    "sys.exit(3)": ("import sys", "sys.exit(3)", "called sys.exit(3) (SystemExit)"),
    "sys.exit(text)": ("import sys", "sys.exit('bye ' * 1000)", "called sys.exit('bye bye"),
    "raise SystemExit": ("", "raise SystemExit", "called sys.exit() (SystemExit)"),
    "GeneratorExit": ("", "raise GeneratorExit('stop')", "raised GeneratorExit: stop"),
    "home-made BaseException": ("class Stop(BaseException):\n    pass", "raise Stop('no')", "raised Stop: no"),
}


@pytest.mark.parametrize("case", list(EXITS))
def test_a_base_exception_inside_encode_is_one_encoder_error(tmp_path, case):
    header, statement, fragment = EXITS[case]
    path = write(tmp_path, "enc.py", f"{header}\ndef encode(images):\n    {statement}\n")
    with pytest.raises(EncoderError) as exc:
        load_encoder(path).encode(np.zeros((2, 1, 64, 64), np.float32))
    message = str(exc.value)
    assert "\n" not in message and fragment in message and len(message) < 400, message
    assert "instead of ending the process" in message


@pytest.mark.parametrize("where", ["import", "get_encoder", "__array__", "channels_last"])
def test_sys_exit_while_loading_or_reading_the_output_is_one_encoder_error(tmp_path, where):
    sources = {
        "import": "import sys\nsys.exit(0)\n",
        "get_encoder": "import sys\ndef get_encoder():\n    sys.exit(0)\n",
        "__array__": GOOD + "import sys\nclass Out:\n    shape = (2, 10)\n    def __array__(self, *a, **k):\n"
                     "        sys.exit(0)\ndef encode(images):\n    return Out()\n",
        "channels_last": "import sys\nclass Enc:\n    @property\n    def channels_last(self):\n        sys.exit(0)\n"
                         "    def encode(self, images):\n        return images.reshape(len(images), -1)[:, :3]\n"
                         "def get_encoder():\n    return Enc()\n",
    }
    path = write(tmp_path, "enc.py", sources[where])
    with pytest.raises(EncoderError) as exc:
        load_encoder(path).encode(np.full((2, 1, 64, 64), 0.5, np.float32))
    assert "sys.exit(0)" in str(exc.value) and "\n" not in str(exc.value)


def test_keyboard_interrupt_inside_encode_stays_an_interrupt(tmp_path):
    path = write(tmp_path, "enc.py", "def encode(images):\n    raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        load_encoder(path).encode(np.zeros((2, 1, 64, 64), np.float32))


def test_check_reports_an_exiting_encoder_as_a_failed_row():
    def exiting(images):
        raise SystemExit(0)

    report = check_encoder(exiting, n_images=8)
    assert not report.passed and report.rows[-1].name == "encodes"
    assert "called sys.exit(0)" in report.rows[-1].detail


# -- the command line, supervised --------------------------------------------------------------------

ENDINGS = {
    "sys.exit(0) in encode": ("import sys\ndef encode(images):\n    sys.exit(0)\n", 1, "called sys.exit(0)"),
    "os._exit(0) in encode": ("import os\ndef encode(images):\n    os._exit(0)\n", 1,
                              "ended with exit status 0 before it finished"),
    "os._exit(0) at import": ("import os\nos._exit(0)\n", 1, "ended with exit status 0 before it finished"),
    "os._exit(0) in get_encoder": ("import os\ndef get_encoder():\n    os._exit(0)\n", 1,
                                   "ended with exit status 0 before it finished"),
    "SIGKILL in encode": ("import os, signal\ndef encode(images):\n    os.kill(os.getpid(), signal.SIGKILL)\n", 1,
                          "was killed by SIGKILL"),
    "daemonising fork": ("import os\n" + GOOD + "def encode(images):\n    if os.fork():\n        os._exit(0)\n"
                         "    return _codes(images)\n", 1, "ended with exit status 0 before it finished"),
    "KeyboardInterrupt in encode": ("def encode(images):\n    raise KeyboardInterrupt\n", 130, None),
}


@pytest.mark.parametrize("case", list(ENDINGS))
def test_evaluate_never_exits_0_when_user_code_ends_the_process(tmp_path, case):
    source, code, fragment = ENDINGS[case]
    write(tmp_path, "enc.py", source)
    earlier = {"status": "ok", "marker": "an earlier complete result"}
    (tmp_path / "R.json").write_text(json.dumps(earlier))
    proc = dbench("evaluate", "enc.py", *SMALL, "--out", "R.json", cwd=tmp_path)
    assert proc.returncode == code, proc.stdout + proc.stderr
    if fragment is not None:
        assert fragment in one_error_line(proc.stderr)
    else:
        assert "Traceback" not in proc.stderr and "interrupted by SIGINT" in proc.stderr
    assert json.loads((tmp_path / "R.json").read_text()) == earlier  # never replaced by a failed run


@pytest.mark.parametrize("case", ["sys.exit(0) in encode", "os._exit(0) in encode", "os._exit(0) at import"])
def test_check_never_exits_0_when_user_code_ends_the_process(tmp_path, case):
    source, _, fragment = ENDINGS[case]
    write(tmp_path, "enc.py", source)
    proc = dbench("check", "enc.py", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert fragment in proc.stdout + proc.stderr and "Traceback" not in proc.stderr


def test_a_fork_inside_encode_writes_one_result_and_exits_0(tmp_path):
    write(tmp_path, "enc.py", "import os\n" + GOOD + "def encode(images):\n    os.fork()\n    return _codes(images)\n")
    proc = dbench("evaluate", "enc.py", *SMALL, "--out", "R.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("wrote ") == 1  # the forked copy left without writing or printing
    assert json.loads((tmp_path / "R.json").read_text())["status"] == "ok"


def test_a_thread_that_never_ends_does_not_keep_dbench_alive(tmp_path):
    write(tmp_path, "enc.py", "import threading, time\n" + GOOD +
          "threading.Thread(target=time.sleep, args=(3600,)).start()\n"
          "def encode(images):\n    return _codes(images)\n")
    proc = dbench("evaluate", "enc.py", *SMALL, "--out", "R.json", cwd=tmp_path, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "R.json").is_file()


# -- os.chdir: every path the user gave was fixed before user code ran --------------------------------

CHDIR = "import os, tempfile\n" + GOOD + "def encode(images):\n    os.chdir(tempfile.mkdtemp())\n    return _codes(images)\n"


def test_relative_paths_survive_an_encoder_that_changes_folder(tmp_path):
    write(tmp_path, "enc.py", CHDIR)
    (tmp_path / "proto").mkdir()
    (tmp_path / "proto" / "p.yaml").write_text(
        "name: p\nversion: 1\ndatasets: [tiny_dsprites]\nseeds: [0]\n"
        "metrics:\n  mig: {n_train: 200}\n  dci: {n_train: 100, n_test: 50}\n")
    proc = dbench("evaluate", "enc.py", "--protocol", "proto/p.yaml", "--backend", "numpy", "--out", "out/R.json",
                  "--cache-dir", "cache", "--plots", "plots", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {tmp_path / 'out' / 'R.json'}" in proc.stdout
    result = json.loads((tmp_path / "out" / "R.json").read_text())
    assert result["status"] == "ok"
    assert result["provenance"]["encoder_file"]["path"] == str((tmp_path / "enc.py").resolve())  # the file scored
    assert list((tmp_path / "cache").iterdir())  # the cache is where it was asked for
    assert (tmp_path / "plots" / "scores.png").is_file()


def test_relative_cache_dir_survives_a_chdir_at_import_in_the_python_api(tmp_path, monkeypatch):
    import dbench as api

    monkeypatch.chdir(tmp_path)
    write(tmp_path, "enc.py", "import os, tempfile\nos.chdir(tempfile.mkdtemp())\n" + GOOD +
          "def encode(images):\n    return _codes(images)\n")
    result = api.evaluate("enc.py", dataset="tiny_dsprites", metrics=["mig"], params={"mig": {"n_train": 200}},
                          backend="numpy", cache_dir="cache")
    os.chdir(tmp_path)
    assert result.status == "ok"
    assert [p.name for p in (tmp_path / "cache").iterdir()]
    assert result.provenance.encoder_file["path"] == str((tmp_path / "enc.py").resolve())


def test_a_long_library_message_is_quoted_by_its_first_sentence(tmp_path):
    # torch's message for a damaged .pt file runs to ~450 characters over several sentences.
    pytest.importorskip("torch")
    (tmp_path / "garbage.pt").write_bytes(bytes(range(256)) * 20)
    with pytest.raises(EncoderError) as exc:
        load_encoder(str(tmp_path / "garbage.pt"))
    text = str(exc.value)
    assert "\n" not in text and len(text) < 300 and "garbage.pt" in text and "torch.jit.save" in text, text


def test_data_folders_from_the_environment_are_pinned_before_user_code_runs(tmp_path, monkeypatch):
    from dbench.datasets._files import DATA_DIR_ENV, DLIB_DATA_DIR_ENV, pin_data_dirs, search_dirs

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_DIR_ENV, "data")
    monkeypatch.setenv(DLIB_DATA_DIR_ENV, "dlib")
    pin_data_dirs()  # what dbench.evaluate does before it loads the encoder
    monkeypatch.chdir("/")  # the encoder moves
    assert search_dirs(None)[:2] == [tmp_path / "data", tmp_path / "dlib"]

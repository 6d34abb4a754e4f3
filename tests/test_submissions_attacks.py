"""Issue 11's attacks, each tried as a hostile submission would: every one must be contained.

They need bubblewrap (CI installs it) and skip cleanly only where it cannot run. A submission that
probes the sandbox reports what it managed to do by raising an exception whose one-line message is
recorded as the result's ``error``; the tests read that, and check the host side independently.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import socket
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from submission_data import GOOD_ENCODER, make_submission, needs_bwrap, protocol_file, write_zip_bomb

from dbench.submissions.limits import Limits
from dbench.submissions.scoring import Scorer

pytestmark = needs_bwrap
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("attacks")


@pytest.fixture(scope="module")
def protocol(workdir) -> Path:
    return protocol_file(workdir)


@pytest.fixture(scope="module")
def untrusted(protocol) -> Scorer:
    return Scorer(protocol, limits=Limits(wall_seconds=60, memory_bytes=3 << 30))


@pytest.fixture(scope="module")
def trusted(protocol) -> Scorer:
    return Scorer(protocol, trust=True, limits=Limits(wall_seconds=30, memory_bytes=3 << 30, max_processes=64))


@pytest.fixture(scope="module")
def codes_file(workdir, untrusted) -> Path:
    wanted = untrusted.queries["tiny_dsprites"]
    path = workdir / "good-codes.npz"
    rng = np.random.default_rng(0)
    np.savez(path, indices=wanted, codes=rng.normal(size=(wanted.size, 3)))
    return path


def _error(scorer: Scorer, path: Path) -> str:
    (result,) = scorer.score(path).results
    assert result.status == "failed", "the probe must report through a failure"
    return result.error


def _probe(body: str) -> str:
    """A Python submission whose encode() runs ``body`` (which ends by raising its findings)."""
    return "import os, sys, socket\n\ndef encode(images):\n" + textwrap.indent(textwrap.dedent(body), "    ")


def _host_processes(marker: str, *, within: float = 5.0) -> list[int]:
    """Live processes whose command line holds ``marker``, once none is left or ``within`` seconds passed.

    The kernel kills a dead PID namespace's processes asynchronously: give them a moment to go.
    """
    end = time.monotonic() + within
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if marker.encode() in (entry / "cmdline").read_bytes() and \
                            (entry / "stat").read_text().split(") ")[-1][:1] != "Z":
                        found.append(int(entry.name))
                except OSError:
                    pass
        if not found or time.monotonic() >= end:
            return found
        time.sleep(0.2)


# -- model files -------------------------------------------------------------------------------------


class _ReadsAFile(torch.nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x):
        stolen = torch.from_file(self.path, shared=False, size=4, dtype=torch.uint8).float()
        return x.flatten(1)[:, :3] + stolen[:3].sum()


class _PlantsAFile(torch.nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x):
        mapped = torch.from_file(self.path, shared=True, size=64, dtype=torch.uint8)
        mapped.fill_(65)  # with shared=True this writes the file
        return x.flatten(1)[:, :3] + mapped[:3].float().sum()


class _Prints(torch.nn.Module):
    def forward(self, x):
        print("hello from the model")
        return x.flatten(1)[:, :3]


class _RunsOnLoad(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(3))

    def forward(self, x):
        return x.flatten(1)[:, :3] * self.weight

    @torch.jit.export
    def __getstate__(self):
        return (self.weight, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, bool]):
        torch.from_file("/etc/hostname", shared=False, size=1, dtype=torch.uint8)
        self.weight = state[0]
        self.training = state[1]


def _torchscript(workdir: Path, name: str, module: torch.nn.Module) -> Path:
    import warnings

    folder = make_submission(workdir, name, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module), str(folder / "encoder.pt"))
    return folder


@pytest.mark.slow
def test_torchscript_io_operators_are_refused_naming_the_operator(untrusted, workdir, tmp_path):
    secret = tmp_path / "scorer-secret.txt"
    secret.write_text("TOPSECRET")
    planted = tmp_path / "site-packages-plant.pth"
    cases = {
        "reads": (_ReadsAFile(str(secret)), "TorchScript operator aten::from_file"),
        "plants": (_PlantsAFile(str(planted)), "TorchScript operator aten::from_file"),
        "prints": (_Prints(), "TorchScript operator prim::Print"),
        "onload": (_RunsOnLoad(), "defines __setstate__, which TorchScript runs while loading"),
    }
    for name, (module, message) in cases.items():
        error = _error(untrusted, _torchscript(workdir, f"ts-{name}", module))
        assert message in error, (name, error)
        assert "TOPSECRET" not in error
    assert not planted.exists()


# -- the filesystem ----------------------------------------------------------------------------------


def test_planting_a_pth_file_in_site_packages_or_the_scorers_files_fails(trusted, workdir, tmp_path):
    import site

    import dbench

    targets = sorted({*site.getsitepackages(), str(Path(dbench.__file__).parent), sys.prefix, str(tmp_path),
                      os.path.expanduser("~"), str(Path.cwd())})
    probe = _probe(f"""
        written = []
        for folder in {targets!r} + sys.path:
            for name in ("dbench_evil.pth", "sitecustomize.py"):
                try:
                    with open(os.path.join(folder or ".", name), "w") as handle:
                        handle.write("import os; os.environ['PWNED'] = '1'\\n")
                    written.append(os.path.join(folder or ".", name))
                except OSError:
                    pass
        # /tmp is the sandbox's own scratch tmpfs: writing there is allowed and vanishes with it.
        outside = [w for w in written if not w.startswith("/tmp/")]
        raise RuntimeError("written: " + repr(outside) + " pwned=" + repr(os.environ.get("PWNED")))
    """)
    error = _error(trusted, make_submission(workdir, "plant", {"encoder.py": probe}))
    assert "written: [] pwned=None" in error, error
    for folder in targets:
        for name in ("dbench_evil.pth", "sitecustomize.py"):
            assert not (Path(folder) / name).exists(), f"{folder}/{name} was written on the host"
    # The next submission (and the leaderboard) run a Python that never saw a plant.
    again = _error(trusted, make_submission(workdir, "after-plant", {"encoder.py": _probe(
        'raise RuntimeError("pwned=" + repr(os.environ.get("PWNED")) + " " + repr("dbench_evil" in sys.modules))')}))
    assert "pwned=None False" in again


def test_the_scorers_environment_and_key_are_out_of_reach(trusted, workdir, monkeypatch, tmp_path):
    secret = "s3cret-" + secrets.token_hex(16)
    key = "k3y-" + secrets.token_hex(20)
    monkeypatch.setenv("DBENCH_TEST_SECRET", secret)
    monkeypatch.setenv("DBENCH_SCORER_KEY", key)
    key_file = tmp_path / "config" / "scorer.key"
    key_file.parent.mkdir()
    key_file.write_text(key)
    probe = _probe(f"""
        found, pids = [], []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            pids.append(int(pid))
            for name in ("environ", "cmdline"):
                try:
                    data = open(f"/proc/{{pid}}/{{name}}", "rb").read()
                except OSError:
                    continue
                if {secret!r}.encode() in data or {key!r}.encode() in data:
                    found.append(f"{{pid}}/{{name}}")
        if {secret!r} in os.environ.values() or {key!r} in os.environ.values():
            found.append("os.environ")
        for path in ({str(key_file)!r}, os.path.expanduser("~/.config/dbench/scorer.key")):
            try:
                open(path).read()
                found.append(path)
            except OSError:
                pass
        raise RuntimeError("found " + repr(found) + " pids " + repr(sorted(pids)))
    """)
    error = _error(trusted, make_submission(workdir, "environ", {"encoder.py": probe}))
    assert "found []" in error, error
    assert secret not in error and key not in error
    visible = json.loads(error.split(" pids ")[1].split(";")[0])
    assert os.getpid() not in visible and len(visible) <= 4  # its own PID namespace: bwrap's init and itself


def test_no_network_not_even_a_listener_on_localhost(trusted, workdir):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[object] = []

    def accept_loop():
        end = time.monotonic() + 20
        while time.monotonic() < end:
            try:
                accepted.append(server.accept()[0].getpeername())
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", port))
    udp.settimeout(0.5)
    probe = _probe(f"""
        connected, errors = [], []
        for host in ("127.0.0.1", "localhost", "10.0.0.1", "1.1.1.1"):
            try:
                socket.create_connection((host, {port}), timeout=2).sendall(b"leak")
                connected.append(host)
            except OSError as exc:
                errors.append(type(exc).__name__)
        try:  # reaches only the sandbox's own loopback (its own network namespace)
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"leak", ("127.0.0.1", {port}))
        except OSError as exc:
            errors.append(type(exc).__name__)
        raise RuntimeError("connected: " + repr(connected) + " errors: " + repr(errors))
    """)
    error = _error(trusted, make_submission(workdir, "network", {"encoder.py": probe}))
    server.close()
    thread.join(timeout=5)
    with pytest.raises((TimeoutError, socket.timeout)):
        udp.recvfrom(100)  # the datagram never reached the host's loopback
    udp.close()
    assert accepted == []
    assert "connected: []" in error, error


@pytest.mark.parametrize("forgery, message", [
    ("stats", "impossible encoding statistics"),
    ("rows", "rows; the query set has"),
    ("header", "larger than"),
])
def test_a_forged_exchange_file_from_the_encode_step_is_refused(trusted, workdir, forgery, message):
    """The encode step runs the submission's code, so its output file is the attacker's: checked, never trusted."""
    probe = _probe(f"""
        import numpy as np
        from dbench.submissions import wire as w
        out = sys.argv[sys.argv.index("--out") + 1]
        queries = w.read_wire(sys.argv[sys.argv.index("--queries") + 1], w.Expect(rows=None, parts=("indices",)),
                             source="q")
        (dataset, _), indices = next(iter(queries.arrays.items()))
        n = indices.size + (7 if {forgery!r} == "rows" else 0)
        forged = w.Wire(arrays={{(dataset, "mean"): np.zeros((n, 3), np.float32)}},
                        stats={{dataset: w.DatasetStats(n_encoded=10**12, seconds=1.0)}})
        w.write_wire(out, forged)
        if {forgery!r} == "header":  # a header length field claiming 4 GB
            with open(out, "r+b") as handle:
                handle.seek(16)
                handle.write(bytes([255] * 4))
        os._exit(0)
    """)
    error = _error(trusted, make_submission(workdir, f"forge-{forgery}", {"encoder.py": probe}))
    assert message in error, error


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="system-call numbers below are x86_64's")
def test_kernel_interfaces_no_encoder_needs_are_refused(trusted, workdir):
    from dbench.submissions import seccomp

    if seccomp.program() is None:
        pytest.skip("libseccomp is not installed here")
    probe = _probe("""
        import ctypes, errno
        libc = ctypes.CDLL(None, use_errno=True)
        found = {}
        # ptrace(PTRACE_TRACEME) succeeds unfiltered; io_uring_setup(1, NULL) would be EFAULT.
        for name, number, args in (("ptrace", 101, (0, 0, 0, 0)), ("io_uring_setup", 425, (1, 0)),
                                   ("perf_event_open", 298, (0, 0, -1, -1, 0)), ("keyctl", 250, (0, 0)),
                                   ("process_vm_readv", 310, (1, 0, 0, 0, 0, 0))):
            ctypes.set_errno(0)
            rc = libc.syscall(number, *args)
            found[name] = "ok" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
        import numpy  # ordinary work still runs under the filter
        raise RuntimeError("calls " + repr(sorted(found.items())) + " numpy " + numpy.__version__)
    """)
    error = _error(trusted, make_submission(workdir, "syscalls", {"encoder.py": probe}))
    calls = dict(__import__("ast").literal_eval(error.split("calls ")[1].split(" numpy ")[0]))
    assert calls == dict.fromkeys(calls, "EPERM") and len(calls) == 5, error
    assert trusted.sandbox_record["seccomp"].startswith("EPERM for ")


# -- parsing bombs and garbage -----------------------------------------------------------------------


def _npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    from numpy.lib import format as npy

    buffer = io.BytesIO()
    npy.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


@pytest.fixture(scope="module")
def npz_bombs(workdir, untrusted) -> dict[str, Path]:
    """Two 2 MB codes.npz files that decompress to 2 GB: a huge declared shape, and honest headers with extra data."""
    n = int(untrusted.queries["tiny_dsprites"].size)
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, untrusted.queries["tiny_dsprites"])
    honest_indices = buffer.getvalue()
    out = {}
    out["shape"] = write_zip_bomb(workdir / "bomb-shape.npz", {
        "indices.npy": (honest_indices, 0), "codes.npy": (_npy_header((250_000_000, 1)), 2_000_000_000)})
    out["extra"] = write_zip_bomb(workdir / "bomb-extra.npz", {
        "indices.npy": (honest_indices, 0), "codes.npy": (_npy_header((n, 3)), 2_000_000_000)})
    return {k: make_submission(workdir, f"npz-{k}", {"codes.npz": v.read_bytes()}) for k, v in out.items()}


def test_npz_bomb_is_refused_in_the_sandbox_and_the_scorer_stays_small(npz_bombs, codes_file, protocol, workdir):
    good = make_submission(workdir, "npz-good", {"codes.npz": codes_file.read_bytes()})
    script = textwrap.dedent(f"""
        import json, resource, sys
        from dbench.submissions.limits import Limits
        from dbench.submissions.scoring import Scorer
        scorer = Scorer({str(protocol)!r}, limits=Limits(wall_seconds=60, memory_bytes=1 << 30))
        out = {{}}
        for path in sys.argv[1:]:
            result = scorer.score(path).results[0]
            out[path] = [result.status, result.error, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]
        print(json.dumps(out))
    """)
    paths = [str(good), str(npz_bombs["shape"]), str(npz_bombs["extra"])]
    proc = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    (status, _, rss_good), (_, shape_error, rss_shape), (_, extra_error, rss_extra) = (out[p] for p in paths)
    assert status == "ok"
    assert "shape (250000000, 1) does not match the query set" in shape_error
    assert "more data than its header declares" in extra_error
    # ru_maxrss is in KiB: scoring the bombs added (almost) nothing to the scorer's peak.
    assert rss_shape - rss_good < 50_000 and rss_extra - rss_good < 50_000, (rss_good, rss_shape, rss_extra)


def test_garbage_inputs_fail_one_by_one_and_the_good_submission_still_scores(codes_file, protocol, workdir, tmp_path):
    wanted = np.load(codes_file)["indices"]
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, indices=wanted, codes=np.array([object()] * wanted.size, dtype=object))
    truncated = codes_file.read_bytes()[: len(codes_file.read_bytes()) // 2]
    submissions = [
        make_submission(tmp_path, "pickled", {"codes.npz": pickled.read_bytes()}),
        make_submission(tmp_path, "truncated", {"codes.npz": truncated}),
        make_submission(tmp_path, "latin1", {"codes.npz": codes_file.read_bytes()}, meta=b"name: caf\xe9\nteam: t\n"),
        make_submission(tmp_path, "deep", {"codes.npz": codes_file.read_bytes()}, meta=b"name: " + b"[" * 20000 + b"\n"),
        make_submission(tmp_path, "good", {"codes.npz": codes_file.read_bytes()}),
        make_submission(tmp_path, "empty", {"codes.npz": b""}),
        # A folder name that is not UTF-8 and holds a terminal escape: scored, and printed harmlessly.
        make_submission(tmp_path, os.fsdecode(b"odd-\xff\x1b[31m"), {"codes.npz": codes_file.read_bytes()},
                        meta=b"name: odd\nteam: t\n"),
        tmp_path / os.fsdecode(b"missing-\xfe"),
        make_submission(tmp_path, "--dash", {"codes.npz": codes_file.read_bytes()}, meta=b"name: dash\nteam: t\n"),
    ]
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "dbench", "score", *map(str, submissions), "--protocol", str(protocol),
                           "--out", str(out)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DBENCH_CONFIG_DIR": str(tmp_path / "config")})
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "unexpected error" not in proc.stderr
    results = {json.loads(p.read_text())["encoder"]["name"]: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert len(results) == len(submissions)
    assert results["good"]["status"] == results["odd"]["status"] == results["dash"]["status"] == "ok"
    assert "\x1b" not in proc.stdout + proc.stderr and "odd-\\udcff" in proc.stdout
    reasons = {name: r["error"] for name, r in results.items() if name not in ("good", "odd", "dash")}
    assert "no such submission" in reasons["missing-\\udcfe"]
    assert "pickles are not allowed" in reasons["pickled"]
    assert "not a readable .npz" in reasons["truncated"]
    assert "not UTF-8 text" in reasons["latin1"]
    assert "deep" in reasons["deep"] or "YAML" in reasons["deep"]
    assert "not a readable .npz" in reasons["empty"]
    assert all(r["status"] == "failed" and "\n" not in r["error"] for name, r in results.items()
               if name not in ("good", "odd", "dash"))


def test_zip_and_tar_bombs_stop_at_the_limit_and_fill_no_disk(protocol, codes_file, workdir, tmp_path, monkeypatch):
    import tempfile

    # A private temporary folder: "nothing left behind" must not see other processes' scoring.
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    scorer = Scorer(protocol, limits=Limits(wall_seconds=60, max_unpacked_bytes=64 << 20))
    meta = b"name: bomb\nteam: t\n"
    zip_bomb = write_zip_bomb(tmp_path / "bomb.zip", {"submission.yaml": (meta, 0), "codes.npz": (b"", 0),
                                                       "padding.bin": (b"", 1_000_000_000)})
    tar_bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(tar_bomb, "w:gz") as tf:
        for name, size in (("submission.yaml", len(meta)), ("codes.npz", 0), ("padding.bin", 200 << 20)):
            info = tarfile.TarInfo(name)
            info.size = size
            tf.addfile(info, io.BytesIO(meta if name == "submission.yaml" else bytes(size)))
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(Limits().max_entries + 1):
            zf.writestr(f"f{i}", b"")
    links = tmp_path / "links.tar"
    with tarfile.open(links, "w") as tf:
        info = tarfile.TarInfo("submission.yaml")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    escape = tmp_path / "escape.zip"
    with zipfile.ZipFile(escape, "w") as zf:
        zf.writestr("../../outside.txt", b"x")
    before = set(Path(tempfile.gettempdir()).glob("dbench-score-*"))
    expected = {zip_bomb: "would bring the unpacked size over the 64 MiB limit",
                tar_bomb: "would bring the unpacked size over the 64 MiB limit",
                many: "entries", links: "link or special file", escape: "points outside the archive"}
    for archive, message in expected.items():
        assert message in _error(scorer, archive), archive
    (good,) = scorer.score(make_submission(tmp_path, "after-bombs", {"codes.npz": codes_file.read_bytes()})).results
    assert good.status == "ok", good.error
    assert set(Path(tempfile.gettempdir()).glob("dbench-score-*")) == before  # nothing left behind
    assert not (tmp_path.parent / "outside.txt").exists()


def test_writing_past_the_scratch_size_is_enospc_inside_the_sandbox(protocol, workdir):
    scorer = Scorer(protocol, trust=True, limits=Limits(wall_seconds=30, scratch_bytes=16 << 20))
    probe = _probe("""
        with open("/tmp/fill", "wb") as handle:
            for _ in range(1000):
                handle.write(bytes(1 << 20))
        raise RuntimeError("wrote 1 GB")
    """)
    error = _error(scorer, make_submission(workdir, "fill", {"encoder.py": probe}))
    assert "No space left on device" in error, error


# -- processes ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_fork_bomb_is_contained(trusted, protocol, workdir):
    marker = "987.6543"
    counted = _probe(f"""
        n = 0
        try:
            while True:
                if os.fork() == 0:
                    os.execv("/usr/bin/sleep", ["sleep", "{marker}"])
                n += 1
        except OSError as exc:
            raise RuntimeError(f"fork stopped after {{n}} children ({{exc.strerror}})")
    """)
    error = _error(trusted, make_submission(workdir, "forks", {"encoder.py": counted}))
    n = int(error.split("fork stopped after ")[1].split()[0])
    assert n < 64, error  # max_processes of the trusted scorer
    assert _host_processes(marker) == []  # the sandbox died with its children

    start = time.monotonic()
    exponential = _probe("""
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """)
    scorer = Scorer(protocol, trust=True, limits=Limits(wall_seconds=8, max_processes=64))
    error = _error(scorer, make_submission(workdir, "forkbomb", {"encoder.py": exponential}))
    assert "wall-time" in error
    assert time.monotonic() - start < 30
    assert _host_processes("dbench.submissions.worker") == []


@pytest.mark.slow
@pytest.mark.parametrize("then", ["returns", "hangs"])
def test_a_detached_daemon_dies_with_the_sandbox(protocol, workdir, tmp_path, then):
    marker = f"876.{54321 if then == 'returns' else 12345}"
    probe = GOOD_ENCODER + textwrap.dedent(f"""
        import os, time
        _encode = encode

        def encode(images):
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.execv("/usr/bin/sleep", ["sleep", "{marker}"])
                os._exit(0)
            os.wait()
            {"time.sleep(3600)" if then == "hangs" else "pass"}
            return _encode(images)
    """)
    folder = make_submission(tmp_path, f"daemon-{then}", {"encoder.py": probe})
    out = tmp_path / "results"
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "dbench", "score", str(folder), "--protocol", str(protocol), "--trust",
                           "--timeout", "10", "--out", str(out)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DBENCH_CONFIG_DIR": str(tmp_path / "config")})
    elapsed = time.monotonic() - start
    (record,) = [json.loads(p.read_text()) for p in out.glob("*.json")]
    if then == "hangs":
        assert proc.returncode == 1 and record["status"] == "failed" and "wall-time limit of 10 s" in record["error"]
    else:
        assert proc.returncode == 0 and record["status"] == "ok", proc.stderr
    assert elapsed < 40
    assert _host_processes(marker) == []


# -- results -----------------------------------------------------------------------------------------


def test_same_name_resubmissions_never_replace_each_other(protocol, codes_file, tmp_path):
    wanted = np.load(codes_file)["indices"]
    other = tmp_path / "other.npz"
    np.savez(other, indices=wanted, codes=np.random.default_rng(1).normal(size=(wanted.size, 3)))
    first = make_submission(tmp_path / "a", "mysub", {"codes.npz": codes_file.read_bytes()}, team="team-a")
    second = make_submission(tmp_path / "b", "mysub", {"codes.npz": other.read_bytes()}, team="team-a")
    out = tmp_path / "results"
    env = {**os.environ, "DBENCH_CONFIG_DIR": str(tmp_path / "config")}
    for folder in (first, second, first):  # a second team's upload, then the first one again
        proc = subprocess.run([sys.executable, "-m", "dbench", "score", str(folder), "--protocol", str(protocol),
                               "--out", str(out)], capture_output=True, text=True, timeout=120, env=env)
        assert proc.returncode == 0, proc.stderr
    files = sorted(out.glob("*.json"))
    assert len(files) == 3 and len({f.read_bytes() for f in files}) == 3
    hashes = [json.loads(f.read_text())["encoder"]["spec"]["submission_sha256"] for f in files]
    assert hashes[0] == hashes[2] != hashes[1]
    assert all(h.removeprefix("sha256:")[:12] in f.name for h, f in zip(hashes, files, strict=True))  # named after the content


def test_result_file_names_are_never_reused(tmp_path):
    from leaderboard_data import result as make_result

    from dbench.evaluation.result import read_result, validate_result
    from dbench.submissions.records import write_new_result

    result = validate_result(make_result("x", (0.5, 0.5, 0.5)))
    key = b"k" * 40
    first = write_new_result(result, tmp_path, "same.json", key=key)
    (tmp_path / "taken.json.sig").write_text("stale")
    second = write_new_result(result, tmp_path, "same.json", key=key)
    third = write_new_result(result, tmp_path, "taken.json", key=key)
    assert [p.name for p in (first, second, third)] == ["same.json", "same-2.json", "taken-2.json"]
    assert read_result(second).entry_name == "x"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporaries left

"""The pieces the sandbox is built from, tested directly: exchange format, unpacking, npz, metadata, keys, text."""

from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile

import numpy as np
import pytest

from dbench._json import json_depth, loads_bounded
from dbench.errors import ConfigError, EncoderError

# -- the exchange format -----------------------------------------------------------------------------


def test_wire_round_trip_and_every_check_before_reading_data(tmp_path):
    from dbench.submissions.wire import MAGIC, Expect, Wire, read_wire, write_wire

    mean = np.arange(12, dtype=np.float32).reshape(4, 3)
    path = tmp_path / "w.bin"
    write_wire(path, Wire(manifest={"a": 1}, arrays={("d", "mean"): mean, ("d", "logvar"): mean.astype(np.float64)}))
    back = read_wire(path, Expect(rows={"d": 4}, manifest=True))
    np.testing.assert_array_equal(back.arrays[("d", "mean")], mean)
    assert back.arrays[("d", "logvar")].dtype == np.float64 and back.manifest == {"a": 1}

    def refused(data: bytes, expect: Expect | None = None, match: str = "") -> None:
        expect = expect or Expect(rows={"d": 4})
        path.write_bytes(data)
        with pytest.raises(ConfigError, match=match):
            read_wire(path, expect)

    write_wire(path, Wire(arrays={("d", "mean"): mean}))
    good = path.read_bytes()
    refused(b"", match="empty or not in dbench's exchange format")
    refused(b"X" * 40, match="not in dbench's exchange format")
    refused(MAGIC + (1 << 30).to_bytes(4, "little"), match="header of 1,073,741,824 bytes")
    refused(good + b"\0", match="bytes where its header declares")
    refused(good[:-1], match="bytes where its header declares")
    refused(good, Expect(rows={"d": 5}), match="has 4 rows; the query set has 5")
    refused(good, Expect(rows={"other": 4}), match="dataset 'd', which the protocol does not use")
    header = json.dumps({"arrays": [{"dataset": "d", "part": "mean", "dtype": "<f4", "shape": [4, 1000]}]}).encode()
    refused(MAGIC + len(header).to_bytes(4, "little") + header, match="1000 latent dimensions")
    header = json.dumps({"arrays": [{"dataset": "d", "part": "mean", "dtype": "|O", "shape": [4, 3]}]}).encode()
    refused(MAGIC + len(header).to_bytes(4, "little") + header, match="dtype")
    deep = b"[" * 100 + b"]" * 100
    refused(MAGIC + len(deep).to_bytes(4, "little") + deep, match="nested 100 levels deep")
    os.unlink(path)
    os.symlink("/dev/zero", path)
    with pytest.raises(ConfigError, match="not written"):
        read_wire(path, Expect(rows={"d": 4}))


def test_json_depth_is_linear_and_ignores_brackets_in_strings():
    assert json_depth(b'{"a": "[[[[", "b": [1, {"c": "\\"]]"}]}') == 3
    assert json_depth(b'"unterminated [[[') == 0
    with pytest.raises(ConfigError, match="nested 1000 levels deep"):
        loads_bounded(b"[" * 1000 + b"]" * 1000, source="x")
    with pytest.raises(ConfigError, match="not valid JSON"):
        loads_bounded(b"\xff\xfe", source="x")
    with pytest.raises(ConfigError, match="larger than the 10-byte limit"):
        loads_bounded(b"[1, 2, 3, 4, 5]", source="x", max_bytes=10)


# -- unpacking ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, message", [
    ("/etc/passwd", "absolute path"),
    ("a/../../b", "points outside the archive"),
    ("a\\b", "backslash"),
    ("C:/x", "absolute path"),
    ("x" * 300, "longer than 255 bytes"),
    ("/".join(["d"] * 40), "nested more than 32"),
])
def test_bad_member_names_are_refused(name, message):
    from dbench.submissions.unpack import checked_name

    with pytest.raises(ConfigError, match=message):
        checked_name("sub.zip", name)


def test_unpacking_refuses_links_specials_and_oversize_before_writing(tmp_path):
    from dbench.submissions.unpack import unpack_submission

    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "link").symlink_to("/etc/passwd")
    with pytest.raises(ConfigError, match="'link' is a symbolic link"):
        unpack_submission(folder, tmp_path / "out1", max_entries=10, max_bytes=1 << 20)
    (folder / "link").unlink()
    os.mkfifo(folder / "fifo")
    with pytest.raises(ConfigError, match="'fifo' is not a regular file or folder"):
        unpack_submission(folder, tmp_path / "out2", max_entries=10, max_bytes=1 << 20)
    (folder / "fifo").unlink()
    root, digests = unpack_submission(folder, tmp_path / "out3", max_entries=10, max_bytes=1 << 20)
    assert (root / "a.txt").read_text() == "a" and set(digests) == {"a.txt"}
    assert (root / "a.txt").stat().st_mode & 0o777 == 0o644

    archive = tmp_path / "hard.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("h")
        info.type, info.linkname = tarfile.LNKTYPE, "a"
        tf.addfile(info)
    with pytest.raises(ConfigError, match="link or special file"):
        unpack_submission(archive, tmp_path / "out4", max_entries=10, max_bytes=1 << 20)
    twice = tmp_path / "twice.zip"
    with zipfile.ZipFile(twice, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("x", b"1")
        zf.writestr("x", b"2")
    with pytest.raises(ConfigError, match="appears twice"):
        unpack_submission(twice, tmp_path / "out5", max_entries=10, max_bytes=1 << 20)
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros", bytes(2 << 20))
    with pytest.raises(ConfigError, match="over the 1 MiB limit"):
        unpack_submission(big, tmp_path / "out6", max_entries=10, max_bytes=1 << 20)
    assert list((tmp_path / "out6").iterdir()) == []  # refused before decompressing a byte
    symlink_zip = tmp_path / "symlink.zip"
    with zipfile.ZipFile(symlink_zip, "w") as zf:
        info = zipfile.ZipInfo("s")
        info.external_attr = (0o120777) << 16  # a symbolic link, as Info-ZIP records one
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ConfigError, match="'s' is a link or special file"):
        unpack_submission(symlink_zip, tmp_path / "out7", max_entries=10, max_bytes=1 << 20)


# -- codes.npz ---------------------------------------------------------------------------------------


def test_npz_reader_reorders_to_the_query_set_and_refuses_pickles(tmp_path):
    from dbench.submissions.npz import read_codes_npz

    wanted = np.array([2, 5, 9], dtype=np.int64)
    path = tmp_path / "c.npz"
    np.savez(path, d__indices=np.array([9, 2, 5]), d__codes=np.array([[9.0], [2.0], [5.0]], dtype=np.float16),
             d__logvar=np.zeros((3, 1)))
    out = read_codes_npz(path, {"d": wanted})["d"]
    np.testing.assert_array_equal(out["mean"][:, 0], [2.0, 5.0, 9.0])
    assert out["mean"].dtype == np.float32 and out["logvar"].shape == (3, 1)
    np.savez(path, indices=wanted, codes=np.array([[1], [2], [3]], dtype=object))
    with pytest.raises(ConfigError, match="pickles are not allowed"):
        read_codes_npz(path, {"d": wanted})
    np.savez(path, indices=wanted, codes=np.zeros((3, 2)).T)  # Fortran order, wrong shape
    with pytest.raises(ConfigError, match=r"shape \(2, 3\) does not match"):
        read_codes_npz(path, {"d": wanted})
    np.savez(path, indices=wanted, codes=np.asfortranarray(np.arange(6.0).reshape(3, 2)))
    np.testing.assert_array_equal(read_codes_npz(path, {"d": wanted})["d"]["mean"], np.arange(6.0).reshape(3, 2))
    np.savez(path, indices=wanted, codes=np.zeros((3, 2)), extra=np.zeros(1))
    with zipfile.ZipFile(path, "a") as zf:
        for i in range(70):
            zf.writestr(f"x{i}.npy", b"")
    with pytest.raises(ConfigError, match="holds at most 64"):
        read_codes_npz(path, {"d": wanted})


# -- metadata ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("data, message", [
    (b"name: a\nteam: t\nextra: 1\n", "unknown key 'extra'"),
    (b"name: a\nteam: [1, 2]\n", "team: must be text"),
    (b'name: a\nteam: "t\\e[31m"\n', "control characters"),
    (b"name: a\nteam: \"t\\u202e\"\n", "control characters"),
    (b"name: " + b"x" * 101 + b"\nteam: t\n", "at most 100 characters"),
    (b"name: a\nteam: t\ncode_url: 'http://a b'\n", "code_url"),
    (b"!!python/object:os.system ls\n", "not valid YAML"),
    (b"a: &a [*a]\n", "unknown key"),
    (b"x" * (70 << 10), "holds at most"),
])
def test_metadata_problems_are_one_line(data, message):
    from dbench.submissions.metadata import parse_metadata

    with pytest.raises(ConfigError, match=message) as info:
        parse_metadata(data, source="s.yaml")
    assert "\n" not in str(info.value)


def test_metadata_allows_a_multi_line_description():
    from dbench.submissions.metadata import parse_metadata

    meta = parse_metadata(b'name: a\nteam: t\ndescription: "line one\\nline two"\ncode_url: https://x.org/a\n',
                          source="s")
    assert meta.description == "line one\nline two" and meta.code_url == "https://x.org/a"


# -- the scorer key ----------------------------------------------------------------------------------


def test_key_file_is_made_private_and_refused_when_readable_by_others(tmp_path, monkeypatch):
    from dbench.submissions.signing import key_file, load_key, signature_text, verify

    monkeypatch.delenv("DBENCH_SCORER_KEY", raising=False)
    monkeypatch.setenv("DBENCH_CONFIG_DIR", str(tmp_path / "cfg"))
    assert load_key() is None and not key_file().exists()
    old = os.umask(0)
    try:
        key = load_key(create=True)
    finally:
        os.umask(old)
    assert key is not None and key_file().stat().st_mode & 0o777 == 0o600
    assert load_key() == key
    os.chmod(key_file(), 0o644)
    with pytest.raises(ConfigError, match=r"only you can read .* chmod 600"):
        load_key()
    monkeypatch.setenv("DBENCH_SCORER_KEY", "short")
    with pytest.raises(ConfigError, match="at least 32"):
        load_key()
    data = b'{"a": 1}'
    result = tmp_path / "r.json"
    result.write_bytes(data)
    assert verify(data, result, key).startswith("unsigned")
    (tmp_path / "r.json.sig").write_text(signature_text(data, key))
    assert verify(data, result, key) is None
    assert "edited" in verify(data + b" ", result, key)


# -- text --------------------------------------------------------------------------------------------


def test_text_is_cleaned_capped_and_escaped():
    from dbench.leaderboard.text import clean, markdown, safe_url

    assert clean("a\nb\tc\u202ed\x00e  f") == "a b cd e f"  # bidi override dropped, controls made spaces
    assert clean("x" * 200, 10) == "x" * 9 + "…"
    assert markdown("<b>|[x](y)_*`") == "&lt;b&gt;\\|\\[x\\]\\(y\\)\\_\\*\\`"
    # No autolink can form on GitHub either (www. and scheme: text, e-mail addresses).
    assert markdown("WWW.evil.example a@b.example https://x v1.2") == (
        "WWW\\.evil.example a\\@b.example https\\://x v1.2")
    assert safe_url("javascript:alert(1)") == "" and safe_url("https://") == "" and safe_url("ftp://x") == ""
    assert safe_url("https://x/)<img>|\"'") == "https://x/%29%3Cimg%3E%7C%22%27"
    assert safe_url("https://github.com/a/b?x=1#y") == "https://github.com/a/b?x=1#y"


# -- model checks ------------------------------------------------------------------------------------


def test_reference_models_and_common_layers_pass_the_torchscript_allow_list():
    torch = pytest.importorskip("torch")
    import warnings

    from dbench.submissions.torchscript_check import check_module
    from reference_models.architecture import GaussianEncoder

    class Layers(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.SiLU(),
                                            torch.nn.MaxPool2d(2), torch.nn.GroupNorm(2, 4), torch.nn.Identity())
            self.attention = torch.nn.MultiheadAttention(4, 2, batch_first=True)

        def forward(self, x):
            h = torch.nn.functional.interpolate(x, scale_factor=0.5, mode="bilinear")
            h = self.body(h).reshape(x.shape[0], 4, -1).transpose(1, 2)
            h = self.attention(h, h, h)[0].mean(1)
            return torch.nn.functional.normalize(h, dim=1), torch.nn.functional.softplus(h).log()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module in (GaussianEncoder(1, 10).eval(), Layers().eval()):
            check_module(torch.jit.script(module))
            check_module(torch.jit.trace(module, torch.zeros(2, 1, 64, 64), check_trace=False))


def test_onnx_checks_domains_and_external_data(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from dbench.submissions.onnx_check import check_onnx

    def save(nodes, name, initializers=(), domain_imports=(("", 17),)):
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], list(initializers))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in domain_imports])
        path = tmp_path / name
        onnx.save(model, str(path))
        return path

    good = save([helper.make_node("Relu", ["x"], ["y"])], "good.onnx")
    check_onnx(good, root=tmp_path)
    custom = save([helper.make_node("Evil", ["x"], ["y"], domain="com.evil")], "custom.onnx",
                  domain_imports=(("", 17), ("com.evil", 1)))
    with pytest.raises(EncoderError, match=r"imports operator domain 'com\.evil'"):
        check_onnx(custom, root=tmp_path)
    weight = helper.make_tensor("w", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    weight.data_location = TensorProto.EXTERNAL
    del weight.float_data[:]
    for key, value in (("location", "../../etc/passwd"), ("length", "12")):
        weight.external_data.add(key=key, value=value)
    outside = save([helper.make_node("Add", ["x", "w"], ["y"])], "outside.onnx", [weight])
    with pytest.raises(EncoderError, match="must be a relative file name inside the submission"):
        check_onnx(outside, root=tmp_path)
    weight.external_data[0].value = "weights.bin"
    (tmp_path / "weights.bin").write_bytes(bytes(8))
    short = save([helper.make_node("Add", ["x", "w"], ["y"])], "short.onnx", [weight])
    with pytest.raises(EncoderError, match="lies outside the 8-byte file"):
        check_onnx(short, root=tmp_path)
    (tmp_path / "weights.bin").unlink()
    (tmp_path / "weights.bin").symlink_to("/etc/hostname")
    with pytest.raises(EncoderError, match="regular file inside the submission"):
        check_onnx(short, root=tmp_path)


def test_progress_lines_in_a_log_and_junk_ignored():
    from dbench.submissions.progress import EncodeProgress

    stream = io.StringIO()
    progress = EncodeProgress("sub", stream=stream, interval=0.0, terminal=False)
    progress("tiny 100 495")
    progress("garbage that a submission wrote")
    progress("tiny 99999 5")
    progress("tiny 495 495")
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("sub: encoding tiny in the sandbox: 100/495 images (20%)")
    assert lines[-1].startswith("sub: encoding tiny in the sandbox: 495/495 images (100%)") and len(lines) == 2


def test_made_up_progress_lines_never_reach_the_terminal():
    from dbench.submissions.progress import only_expected

    seen: list[str] = []
    forward = only_expected(seen.append, {"tiny": 495})
    for line in ("tiny 100 495", "\x1b]52;c;cHduZWQ=\x07 1 495", "other 1 495", "tiny 1 494", "tiny \u0661 495",
                 "tiny  1 495", "tiny 495 495"):
        forward(line)
    assert seen == ["tiny 100 495", "tiny 495 495"]


def test_cgroup_limits_a_process_tree_where_one_can_be_made():
    import subprocess

    from dbench.submissions import cgroups

    group = cgroups.create(memory_bytes=256 << 20, max_processes=16)
    if group is None:
        pytest.skip("no cgroup can be created here (not root, no delegated cgroup v2)")
    try:
        proc = subprocess.run(["sh", "-c", "for i in $(seq 40); do sleep 2 & done; wait"], preexec_fn=group.enter,
                              capture_output=True, text=True, timeout=60)
        assert "fork" in proc.stderr.lower() or "resource" in proc.stderr.lower(), proc.stderr
    finally:
        group.remove()
    assert not any(folder.exists() for folder in group.created)


def test_a_sandbox_that_would_see_the_signing_key_never_starts(tmp_path, monkeypatch):
    from dbench.submissions.limits import Limits
    from dbench.submissions.sandbox import Sandbox

    monkeypatch.setenv("DBENCH_CONFIG_DIR", str(tmp_path / "home" / ".config" / "dbench"))
    sandbox = Sandbox("bwrap", Limits(), scratch=tmp_path)
    sandbox.data_dir(tmp_path / "elsewhere")
    assert sandbox.exposed_secret() is None
    # `--data-dir ~` (or a submission folder, resolved through a link) holding the key's folder:
    sandbox.data_dir(tmp_path / "home")
    outcome = sandbox.run(["prepare"], deadline=float("inf"), file_size=1 << 20)
    assert not outcome.ok and "holds the scorer's key folder" in outcome.reason and "DBENCH_CONFIG_DIR" in outcome.reason
    linked = tmp_path / "upload"
    linked.symlink_to(tmp_path / "home" / ".config")
    other = Sandbox("bwrap", Limits(), scratch=tmp_path)
    other.path(linked, "/in/submission")
    assert "holds the scorer's key folder" in (other.exposed_secret() or "")
    # Without a sandbox nothing is hidden anyway (docs/security.md says so): no refusal there.
    assert Sandbox("none", Limits(), scratch=tmp_path).exposed_secret() is None


def test_a_seccomp_filter_bubblewrap_cannot_load_is_reported_not_fatal(monkeypatch):
    from dbench.submissions import sandbox, seccomp

    if sandbox.bwrap_problem() is not None:
        pytest.skip(f"bubblewrap cannot run here: {sandbox.bwrap_problem()}")
    monkeypatch.setattr(seccomp, "program", lambda: b"\0" * 8)  # one instruction, no return: invalid BPF
    sandbox.seccomp_problem.cache_clear()
    try:
        assert "bubblewrap could not load it" in (sandbox.seccomp_problem() or "")
        assert sandbox.seccomp_status().startswith("unavailable (bubblewrap could not load it")
    finally:
        sandbox.seccomp_problem.cache_clear()
    monkeypatch.undo()
    assert sandbox.seccomp_status().startswith("EPERM for ") or seccomp.program() is None


def test_folders_under_tmp_are_bound_after_the_sandbox_s_own_tmp(tmp_path, monkeypatch):
    # A CI checkout with its virtual environment under /tmp once left the sandbox without Python:
    # the fresh tmpfs on /tmp was mounted after, and over, the environment's bind.
    import sys
    from pathlib import Path

    from dbench.submissions import sandbox as sandbox_module
    from dbench.submissions.limits import Limits

    venv = Path("/tmp") / "dbench-test-venv"
    monkeypatch.setattr(sandbox_module, "_python_folders", lambda: [Path(sys.prefix), venv])
    monkeypatch.setattr(sandbox_module, "bwrap_path", lambda: "/usr/bin/bwrap")
    box = sandbox_module.Sandbox("bwrap", Limits(), scratch=tmp_path)
    box.data_dir(tmp_path / "data")
    cmd = box._command(["prepare"])
    tmpfs = cmd.index("/tmp", cmd.index("--tmpfs"))
    for folder in (str(venv), str(tmp_path / "data")):
        bind = cmd.index(folder)
        assert cmd[bind - 1] == "--ro-bind" and bind > tmpfs, folder

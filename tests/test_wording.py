"""Messages say what is wrong and what to do, in the command line's own terms (issue 13, item 12).

The missing-data-file message is tested in test_datasets_download.py, ``traverse FILE`` in
test_result_plots.py and one-line warnings in test_cli_evaluate.py.
"""

from __future__ import annotations

import pytest

from dbench._cli.main import main


def test_a_torch_save_file_given_as_an_encoder_says_what_to_do(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(4096, 3)
    torch.save(model.state_dict(), tmp_path / "weights.pth")
    torch.save(model.state_dict(), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    for name in ("weights.pth", "legacy.pt"):
        assert main(["evaluate", str(tmp_path / name), "--dataset", "tiny_dsprites", "--metrics", "mig"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"dbench: error: {name} was saved with torch.save (a state_dict or a pickled model)")
        assert "get_encoder()" in err and "torch.jit.save" in err and "corrupted" not in err and "\n" not in err
    # A real TorchScript file still loads.
    scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), model))
    torch.jit.save(scripted, str(tmp_path / "ok.pt"))
    from dbench.encoders import load_encoder

    assert load_encoder(tmp_path / "ok.pt").kind == "torchscript"


def test_training_errors_name_the_cli_flags(tmp_path):
    pytest.importorskip("torch")
    from dbench.errors import DbenchError
    from reference_models.checkpoint import CHECKPOINT_FILE
    from reference_models.training import train

    run = tmp_path / "run"
    train("vae", dataset="tiny_dsprites", steps=1, seed=0, out_dir=run, progress=False)
    with pytest.raises(DbenchError) as info:  # another seed in the same folder: not resumable
        train("vae", dataset="tiny_dsprites", steps=2, seed=1, out_dir=run, progress=False)
    assert "--restart" in str(info.value) and "pass resume=False" not in str(info.value)
    with pytest.raises(DbenchError, match=r"past --steps 0; pass --steps 1 or more to continue it, or --restart"):
        train("vae", dataset="tiny_dsprites", steps=0, seed=0, out_dir=run, progress=False)
    (run / CHECKPOINT_FILE).write_bytes(b"truncated")
    with pytest.raises(DbenchError, match=r"truncated or corrupt .*train again with --restart"):
        train("vae", dataset="tiny_dsprites", steps=2, seed=0, out_dir=run, progress=False)


def test_plot_losses_on_a_file_says_it_needs_a_run_folder(tmp_path, capsys):
    pytest.importorskip("torch")
    (tmp_path / "losses.csv").write_text("step,loss\n")
    assert main(["plot-losses", str(tmp_path / "losses.csv"), "--out", str(tmp_path / "l.png")]) == 2
    err = capsys.readouterr().err
    assert "is not a run folder (a file)" in err and "Errno" not in err


def test_operating_system_errors_are_words_not_errno(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    encoder = tmp_path / "enc.py"
    encoder.write_text("def encode(images):\n    return images.reshape(len(images), -1)[:, ::997]\n")
    code = main(["evaluate", str(encoder), "--dataset", "tiny_dsprites", "--metrics", "mig", "--set", "mig.n_train=100",
                 "--backend", "numpy", "--out", str(blocker / "r.json")])
    err = capsys.readouterr().err
    assert code == 1 and "Errno" not in err
    assert f"dbench: error: cannot use {blocker}" in err and "(the result above was not saved)" in err

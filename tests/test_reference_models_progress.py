"""Training progress: periodic lines in a log, a tqdm bar in a terminal, nothing when disabled."""

from __future__ import annotations

import io

from reference_models.progress import TrainingProgress, format_duration, format_losses

LOSSES = {"loss": 612.345, "reconstruction": 590.1, "kl": 5.5234, "regularizer": 22.1, "tc_estimate": -0.5}
TERMS = "loss 612.3, reconstruction 590.1, kl 5.523, tc_estimate -0.5"  # the regularizer is not shown


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_line_per_interval_with_speed_eta_and_losses():
    stream, clock = io.StringIO(), FakeClock()
    report = TrainingProgress(name="beta_vae", total=1000, initial=200, stream=stream, interval=30.0, clock=clock)
    for step in range(200, 700):  # 8 steps/s (0.125 s is exact in binary): lines at 30 s and 60 s
        clock.now += 0.125
        report.update(step, LOSSES)
    clock.now += 0.5
    report.close()
    lines = stream.getvalue().splitlines()
    assert lines == [
        "beta_vae: training to step 1000, resuming at step 200",
        f"beta_vae: step 440/1000 (44.0%), 8.00 steps/s, ETA 1m10s, {TERMS}",
        f"beta_vae: step 680/1000 (68.0%), 8.00 steps/s, ETA 40s, {TERMS}",
        f"beta_vae: step 700/1000 (70.0%), 7.94 steps/s, stopped after 1m03s, {TERMS}",
    ]


def test_a_finished_training_says_so():
    stream, clock = io.StringIO(), FakeClock()
    report = TrainingProgress(name="vae", total=10, initial=0, stream=stream, interval=30.0, clock=clock)
    for step in range(10):
        clock.now += 1.0
        report.update(step, LOSSES)
    report.close()
    assert stream.getvalue().splitlines()[-1].startswith("vae: step 10/10 (100.0%), 1.00 steps/s, finished after 10s")


def test_a_terminal_gets_a_bar_and_disabled_progress_prints_nothing():
    terminal = Terminal()
    report = TrainingProgress(name="vae", total=10, initial=0, stream=terminal)
    for step in range(10):
        report.update(step, LOSSES)
    report.close()
    assert "10/10" in terminal.getvalue() and "\r" in terminal.getvalue()

    quiet = io.StringIO()
    report = TrainingProgress(name="vae", total=10, initial=0, stream=quiet, enabled=False)
    report.update(0, LOSSES)
    report.close()
    assert quiet.getvalue() == ""


def test_formatting():
    assert format_duration(9.4) == "9s"
    assert format_duration(125) == "2m05s"
    assert format_duration(3725) == "1h02m"
    assert format_duration(-3) == "0s"
    assert format_losses({"kl": 1.23456, "loss": 10.0, "other": 3.0}) == "loss 10, kl 1.235"

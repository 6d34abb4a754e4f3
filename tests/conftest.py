"""Test-suite setup shared by every test module.

* The helper modules beside this file (``metric_cases``, ``sampling_metric_data``,
  ``leaderboard_data``) are importable under any pytest import mode.
* hypothesis runs the metric property tests on a few reproducible examples without deadlines (a
  metric call takes tens of milliseconds; CI must stay fast and never flake on timing), does not
  shrink failures, and writes no example database into the checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import Phase, settings

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

# No shrinking: a failing example is reported as drawn (the few examples are small already).
_PHASES = tuple(phase for phase in Phase if phase is not Phase.shrink)
settings.register_profile("dbench", max_examples=10, deadline=None, derandomize=True, database=None, phases=_PHASES)
settings.load_profile("dbench")

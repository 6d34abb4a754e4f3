"""The one JSON helper: plain-data conversion, canonical text for hashes, atomic writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from dbench._json import canonical_json, jsonable, write_json_atomic
from dbench.errors import ConfigError


def test_jsonable_converts_numpy_tuples_and_paths():
    data = {"a": (1, np.int64(2)), 3: {"b": np.float32(0.5), "c": np.arange(3), "d": Path("x/y")},
            "e": np.bool_(True), "f": None}
    out = jsonable(data)
    assert out == {"a": [1, 2], "3": {"b": 0.5, "c": [0, 1, 2], "d": "x/y"}, "e": True, "f": None}
    assert type(out["a"][1]) is int and type(out["3"]["b"]) is float and type(out["e"]) is bool
    assert json.loads(json.dumps(out)) == out


def test_jsonable_names_where_a_bad_value_sits():
    with pytest.raises(ConfigError, match=r"^p.yaml: metrics.mig.n_bins: value of type object cannot be written"):
        jsonable({"mig": {"n_bins": object()}}, "p.yaml: metrics")
    with pytest.raises(ConfigError, match=r"^where.x: nan is not a finite number"):
        jsonable({"x": float("nan")}, "where", finite=True)
    assert math.isnan(jsonable({"x": float("nan")})["x"])  # scores may be NaN


def test_canonical_json_is_independent_of_key_order_and_refuses_nan():
    assert canonical_json({"b": [1, 2], "a": {"d": 1, "c": "é"}}) == '{"a":{"c":"\\u00e9","d":1},"b":[1,2]}'
    assert canonical_json({"a": 1, "b": 2}) == canonical_json({"b": 2, "a": 1})
    with pytest.raises(ValueError):
        canonical_json({"x": float("inf")})


def test_atomic_write_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    path = write_json_atomic(tmp_path / "sub" / "r.json", {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": object()})  # fails half-way through serialising
    assert json.loads(path.read_text()) == {"a": 1}  # the earlier file is intact
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]

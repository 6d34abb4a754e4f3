"""Constraints on metric parameters (scikit-learn's ``_param_validation`` style), in plain words.

A constraint answers three questions about a value: is it allowed (:meth:`Constraint.is_satisfied_by`),
how is the rule said to a person (``str(constraint)``, e.g. ``"an integer in [2, 10000000]"``), and
what does it look like as plain data (:meth:`Constraint.to_data`, for ``dbench list metrics``). Each
also gives one value it accepts (:meth:`~Constraint.example`) and values it refuses
(:meth:`~Constraint.invalid_examples`), so one generic test checks every declared constraint.

Values arrive from YAML (``1e11`` is read as the *string* ``'1e11'``, ``1.0e+11`` as a float), from
``--set`` and from Python callers (NumPy scalars included). Booleans are never numbers here, an
integer parameter refuses every float (``2.0`` included), and a number parameter refuses NaN and
infinities.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Closed = Literal["both", "left", "right", "neither"]


class Constraint(ABC):
    """What values a parameter may take."""

    @abstractmethod
    def is_satisfied_by(self, value: Any) -> bool:
        """Whether ``value`` is allowed."""

    @abstractmethod
    def __str__(self) -> str:
        """The rule in words, as error messages and ``dbench list metrics`` show it."""

    @abstractmethod
    def example(self) -> Any:
        """One allowed value."""

    @abstractmethod
    def invalid_examples(self) -> list[Any]:
        """Values this constraint refuses (for the test that every declared constraint refuses them)."""

    @abstractmethod
    def to_data(self) -> dict[str, Any]:
        """The constraint as plain data (JSON-ready)."""


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _is_integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not _is_bool(value)




@dataclass(frozen=True)
class Interval(Constraint):
    """An integer (``type=int``) or finite real number (``type=float``) between ``low`` and ``high``.

    ``closed`` says which ends belong to the interval. Both ends are finite: every numeric parameter
    has a range, its upper end sized so that a legal value cannot ask for more than a few GB.
    """

    type: type
    low: float
    high: float
    closed: Closed = "both"

    def __post_init__(self) -> None:
        if self.type not in (int, float):
            raise TypeError(f"Interval type must be int or float; got {self.type!r}")
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low <= self.high):
            raise ValueError(f"Interval needs finite low <= high; got [{self.low}, {self.high}]")
        if self.closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"Interval closed must be both, left, right or neither; got {self.closed!r}")

    def _inside(self, value: Any) -> bool:
        above = value >= self.low if self.closed in ("both", "left") else value > self.low
        below = value <= self.high if self.closed in ("both", "right") else value < self.high
        return above and below

    def is_satisfied_by(self, value: Any) -> bool:
        if self.type is int:
            return _is_integer(value) and self._inside(value)
        if _is_bool(value) or not isinstance(value, (int, float, np.integer, np.floating)):
            return False
        return math.isfinite(float(value)) and self._inside(value)

    def __str__(self) -> str:
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        if self.type is int:
            return f"an integer in {left}{int(self.low)}, {int(self.high)}{right}"
        return f"a number in {left}{self.low:g}, {self.high:g}{right}"

    def example(self) -> Any:
        if self.closed in ("both", "left"):
            return self.type(self.low)
        if self.closed == "right":
            return self.type(self.high)
        middle = (self.low + self.high) / 2
        return math.ceil(middle) if self.type is int else middle

    def invalid_examples(self) -> list[Any]:
        below = self.low - 1 if self.closed in ("both", "left") else self.low
        above = self.high + 1 if self.closed in ("both", "right") else self.high
        out: list[Any] = [self.type(below), self.type(above), True, None, str(self.example()), [self.example()]]
        out += [1e11, "1e11"] if self.type is int else [math.nan, math.inf, -math.inf]
        if self.type is int:
            out.append(float(self.example()))  # an integral float is still not an integer
        return [value for value in out if not self.is_satisfied_by(value)]

    def to_data(self) -> dict[str, Any]:
        kind = "integer" if self.type is int else "number"
        return {"type": kind, "low": self.low, "high": self.high, "closed": self.closed}


@dataclass(frozen=True)
class Options(Constraint):
    """One of a fixed set of values (scikit-learn's ``StrOptions``), compared with their type."""

    values: tuple[Any, ...]

    def __init__(self, values: Iterable[Any]) -> None:
        items = sorted(values) if isinstance(values, (set, frozenset)) else list(values)
        if not items:
            raise ValueError("Options needs at least one value")
        object.__setattr__(self, "values", tuple(items))

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            return any(type(value) is type(option) and value == option for option in self.values)
        except (TypeError, ValueError):  # e.g. an array compared with a string
            return False

    def __str__(self) -> str:
        names = ", ".join(repr(v) for v in self.values)
        return f"one of {names}" if len(self.values) > 1 else names

    def example(self) -> Any:
        return self.values[0]

    def invalid_examples(self) -> list[Any]:
        out = ["not-an-option", str(self.values[0]).upper() + "_", 1, None, True, list(self.values[:1])]
        return [value for value in out if not self.is_satisfied_by(value)]

    def to_data(self) -> dict[str, Any]:
        return {"type": "options", "values": list(self.values)}


@dataclass(frozen=True)
class Boolean(Constraint):
    """``True`` or ``False`` (not 0/1, not the strings ``"true"``/``"false"``)."""

    def is_satisfied_by(self, value: Any) -> bool:
        return _is_bool(value)

    def __str__(self) -> str:
        return "a boolean (true or false)"

    def example(self) -> Any:
        return False

    def invalid_examples(self) -> list[Any]:
        return [0, 1, "true", "False", None, 0.0]

    def to_data(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Text(Constraint):
    """A non-empty string of at most ``max_length`` characters (a name, such as a factor's)."""

    max_length: int = 100

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, str) and 0 < len(value) <= self.max_length

    def __str__(self) -> str:
        return f"a non-empty string of at most {self.max_length} characters"

    def example(self) -> Any:
        return "name"

    def invalid_examples(self) -> list[Any]:
        return ["", "x" * (self.max_length + 1), 1, None, True, ["name"]]

    def to_data(self) -> dict[str, Any]:
        return {"type": "string", "max_length": self.max_length}


@dataclass(frozen=True)
class AnyOf(Constraint):
    """Any value one of ``constraints`` allows (e.g. a number of shots or ``"all"``)."""

    constraints: tuple[Constraint, ...]

    def __init__(self, *constraints: Constraint) -> None:
        if len(constraints) < 2:
            raise ValueError("AnyOf needs at least two constraints")
        object.__setattr__(self, "constraints", tuple(constraints))

    def is_satisfied_by(self, value: Any) -> bool:
        return any(c.is_satisfied_by(value) for c in self.constraints)

    def __str__(self) -> str:
        return " or ".join(str(c) for c in self.constraints)

    def example(self) -> Any:
        return self.constraints[0].example()

    def invalid_examples(self) -> list[Any]:
        candidates = [value for c in self.constraints for value in c.invalid_examples()]
        return [value for value in candidates if not self.is_satisfied_by(value)]

    def to_data(self) -> dict[str, Any]:
        return {"type": "any_of", "constraints": [c.to_data() for c in self.constraints]}


@dataclass(frozen=True)
class ListOf(Constraint):
    """A list (or tuple) of ``min_length`` to ``max_length`` items, each allowed by ``item``.

    ``unique``: no item may appear twice (a training size or a probe listed twice would be drawn
    or fitted twice under one score key).
    """

    item: Constraint
    min_length: int = 0
    max_length: int = 100
    unique: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.min_length <= self.max_length:
            raise ValueError(f"ListOf needs 0 <= min_length <= max_length; got {self.min_length}, {self.max_length}")

    def is_satisfied_by(self, value: Any) -> bool:
        if not isinstance(value, (list, tuple)) or not self.min_length <= len(value) <= self.max_length:
            return False
        if not all(self.item.is_satisfied_by(v) for v in value):
            return False
        return not self.unique or len({(type(v), v) for v in value}) == len(value)

    def __str__(self) -> str:
        if self.min_length == self.max_length:
            count = f"{self.min_length}"
        elif self.min_length == 0:
            count = f"at most {self.max_length}"
        else:
            count = f"{self.min_length} to {self.max_length}"
        distinct = " distinct" if self.unique else ""
        return f"a list of {count}{distinct} entries, each {self.item}"

    def example(self) -> Any:
        return [self.item.example()] * self.min_length

    def invalid_examples(self) -> list[Any]:
        valid = self.item.example()
        out: list[Any] = [valid, None, "[1, 2]", [valid] * (self.max_length + 1)]
        out += [[bad] for bad in self.item.invalid_examples()[:3]]
        if self.min_length > 0:
            out.append([])
        if self.unique and self.max_length >= 2:
            out.append([valid, valid])
        return [value for value in out if not self.is_satisfied_by(value)]

    def to_data(self) -> dict[str, Any]:
        return {
            "type": "list",
            "item": self.item.to_data(),
            "min_length": self.min_length,
            "max_length": self.max_length,
            "unique": self.unique,
        }


__all__ = ["AnyOf", "Boolean", "Constraint", "Interval", "ListOf", "Options", "Text"]

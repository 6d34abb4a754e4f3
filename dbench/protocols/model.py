"""The protocol schema: a pydantic model of what a protocol file may say.

Names with a fixed set of values (representation, backend, aggregate) come from :mod:`dbench.choices`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, StrictInt

from dbench.choices import Aggregate, BackendName, Representation

#: Bounds of the protocol's own numbers (each metric's parameters have their declared ranges): every
#: legal value can run. A batch of 65,536 dSprites images is 1 GB of float32.
MAX_BATCH_SIZE = 65_536
MAX_SEED = 2**32 - 1
MAX_SEEDS = 100
MAX_DATASETS = 20
MAX_NAME_LENGTH = 100

# A metric parameter: a YAML scalar or a list of them (downstream_task's training sizes).
ParamScalar = StrictBool | StrictInt | float | str | None
ParamValue = ParamScalar | list[ParamScalar]


class Protocol(BaseModel):
    """A validated protocol, ``include`` already merged in.

    ``representation`` is always a list (``"mean"`` in a file becomes ``["mean"]``). ``ranking`` lists
    the ``"metric.key"`` scores a leaderboard ranks entries on, in column order.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"^[A-Za-z0-9_.-]+$")
    version: StrictInt = Field(ge=1, le=1_000_000)
    description: str = ""
    datasets: list[str] = Field(min_length=1, max_length=MAX_DATASETS)
    representation: Representation | list[Representation] = "mean"
    seeds: list[Annotated[StrictInt, Field(ge=0, le=MAX_SEED)]] = Field(min_length=1, max_length=MAX_SEEDS)
    backend: BackendName = "auto"
    batch_size: StrictInt = Field(default=64, ge=1, le=MAX_BATCH_SIZE)
    metrics: dict[str, dict[str, ParamValue] | None] = Field(min_length=1)
    aggregate: Aggregate | None = None
    ranking: list[str] | None = None

    _source: str = PrivateAttr(default="<protocol>")

    @property
    def source(self) -> str:
        """Where the protocol was read from (a file path), for error messages."""
        return self._source

    @property
    def representations(self) -> list[str]:
        """``representation`` as a list."""
        rep = self.representation
        return [rep] if isinstance(rep, str) else list(rep)

    def overrides(self, metric: str) -> dict[str, Any]:
        """Parameter overrides the protocol sets for ``metric`` (an empty mapping in YAML may be null)."""
        return dict(self.metrics[metric] or {})


__all__ = ["MAX_BATCH_SIZE", "MAX_SEED", "MAX_SEEDS", "ParamScalar", "ParamValue", "Protocol"]

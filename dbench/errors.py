"""Errors that the CLI reports as one line (what is wrong and how to fix it) instead of a traceback."""


class DbenchError(Exception):
    """Base class for user-facing errors: the message is one line saying what is wrong and how to fix it."""


class EncoderError(DbenchError):
    """The encoder could not be loaded, raised, or returned unusable codes."""


class DatasetError(DbenchError):
    """A dataset is unknown, or its files are missing or malformed."""


class ConfigError(DbenchError):
    """A protocol, submission or parameter set is malformed."""


class ParameterError(ConfigError, ValueError):
    """A metric parameter is unknown or outside its declared range (one line: metric, parameter, value, range).

    Also a ``ValueError``, as Python callers of the array-level metric functions expect.
    """


class EvaluationError(DbenchError):
    """A Python evaluation finished but some part failed (a metric, or the encoder midway).

    Raised by :func:`dbench.evaluate` and :func:`dbench.evaluate_all` unless they are called with
    ``raise_on_failure=False``. Nothing is lost: :attr:`results` holds every result of the call,
    failed parts recorded in their ``errors``, and :attr:`result` the first one that failed.
    """

    def __init__(self, message: str, results: list) -> None:
        super().__init__(message)
        #: every result of the call, in order (the scored metrics are in their ``scores``)
        self.results = list(results)
        #: the first result whose status is not ``"ok"``
        failed = [r for r in self.results if getattr(r, "status", "ok") != "ok"]
        self.result = failed[0] if failed else (self.results[0] if self.results else None)

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

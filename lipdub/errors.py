"""One exception family. Every message says what the user can do about it."""


class LipdubError(Exception):
    """Base class of every error lipdub raises on purpose; the CLI prints it as one line."""

    exit_code = 1


class ParameterError(LipdubError, ValueError):
    """An option or argument has a value lipdub cannot use."""

    exit_code = 2


class InputError(LipdubError):
    """An input file is missing, unreadable, or holds no usable audio/video."""

    exit_code = 3


class OutputError(LipdubError):
    """The output cannot be written (folder missing or unwritable, output equals an input)."""

    exit_code = 4


class DependencyError(LipdubError):
    """A bundled model or external program is missing: reinstall with `make demo`."""

    exit_code = 5

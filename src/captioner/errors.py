"""The one exception type the CLI turns into a clean message instead of a traceback."""


class CaptionerError(Exception):
    """A user-facing error: bad input, a missing file, a mismatch. The message names what was wrong."""

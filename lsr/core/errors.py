"""Errors a user can cause. The CLI prints them as one line and exits non-zero, without a traceback."""


class LsrError(Exception):
    """Base of every error that is the user's to fix (bad path, bad column, bad option)."""


class InputError(LsrError):
    """An input file or option is unusable; the message names the file and the problem."""

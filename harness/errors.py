"""Errors that are the user's to fix: each message is one line naming the problem and the fix."""


class UsageError(Exception):
    """Bad input to a command (a file, a directory, a backend name): ``decaylens`` prints the
    message on one line and exits with status 2, having written nothing."""


class SpecError(UsageError, ValueError):
    """A spec or a case is invalid; the message names the file, the key and the allowed values."""

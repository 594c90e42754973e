"""The two kinds of failure a user can see: a bad request (exit 2) and a failed job (exit 1)."""


class SoraError(Exception):
    """A failure to report as one line, `error: <message>`, with exit code 1."""

    exit_code = 1


class SoraUsageError(SoraError):
    """The command line itself is wrong (bad flag value, wrong number of inputs): exit code 2."""

    exit_code = 2

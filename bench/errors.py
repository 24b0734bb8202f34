"""The one user-facing error type.

A BenchError is bad input from the user (unknown experiment, malformed data spec, corrupt record):
the CLI prints its message as one line on stderr and exits with code 2, without a traceback.
Messages name what is wrong and what is valid.
"""


class BenchError(Exception):
    """Bad user input; the message is one line naming the problem and the valid choices."""

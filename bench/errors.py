"""The one user-facing error type.

A BenchError is bad input from the user (unknown experiment, malformed data spec, corrupt record):
the CLI prints its message as one line on stderr and exits with code 2, without a traceback.
Messages name what is wrong and what is valid.
"""

_WORKER_PREFIX = "Caught BenchError"
_ORIGINAL = "BenchError: "


class BenchError(Exception):
    """Bad user input; the message is one line naming the problem and the valid choices.

    A BenchError raised inside a DataLoader worker (a bad mask found while loading) reaches the
    main process re-created by torch as BenchError("Caught BenchError in DataLoader worker ...
    Original Traceback ... bench.errors.BenchError: MESSAGE"); the constructor keeps only MESSAGE,
    so the CLI's promise of one line holds whether or not the data is loaded in workers.
    """

    def __init__(self, message: object = ""):
        text = str(message)
        if text.startswith(_WORKER_PREFIX) and _ORIGINAL in text:
            text = text.rstrip().rsplit(_ORIGINAL, 1)[1]
        super().__init__(text)


def one_line(err: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line (whitespace folded), at most ``limit`` characters: how a
    warning or a record names an error it does not stop for."""
    return " ".join(f"{type(err).__name__}: {err}".split())[:limit]

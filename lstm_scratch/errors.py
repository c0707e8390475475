"""The one exception type that means "the user asked for something we can't do".

The CLI prints a :class:`UserError` as one line and exits with status 2;
anything else is a bug and keeps its traceback.
"""
import contextlib
import os


class UserError(Exception):
    """A bad input: a file, a flag, a checkpoint. The message is one line
    that names what was wrong and where, and what was expected."""



@contextlib.contextmanager
def naming_file(path, instead_of=None):
    """Give an OSError raised inside the block ``path`` as its filename, if it has
    none (or has ``instead_of``, e.g. a temp file): a full disk then says which file
    it could not write, not only "No space left on device". The type (and so
    BrokenPipeError) is kept."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None or exc.filename not in (None, instead_of):
            raise
        raise OSError(exc.errno, exc.strerror, os.fspath(path)) from exc


def stream_name(out):
    """What to call the stream ``out`` in an error: its file name, or standard output."""
    name = getattr(out, "name", None)
    if name in ("<stdout>", "<stderr>"):
        return "standard " + ("output" if name == "<stdout>" else "error")
    return name if isinstance(name, str) else "the output stream"

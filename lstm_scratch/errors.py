"""The one exception type that means "the user asked for something we can't do".

The CLI prints a :class:`UserError` as one line and exits with status 2;
anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A bad input: a file, a flag, a checkpoint. The message is one line
    that names what was wrong and where, and what was expected."""


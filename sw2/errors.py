"""The one exception type for bad user input: the CLI prints it as one line and exits 2."""


class UserError(Exception):
    """A problem with the user's spec, files or data; the message names it and says what to do."""

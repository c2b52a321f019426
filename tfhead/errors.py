"""The one base of every error a user can cause: entry points catch `TfheadError` and print its
message as one line (exit code 1); anything else is a bug and keeps its traceback.

Each module defines its own subclasses next to the code that raises them (`DrivingError`,
`PersonCheckpointError`, `OutputPathError`, …); they also derive from the built-in exception that
describes them (ValueError, IOError, RuntimeError), so `except ValueError` keeps working.
Imports nothing (the on-device runner uses it).
"""


class TfheadError(Exception):
    """A problem with the user's input, files or settings, with a message that says what to do."""

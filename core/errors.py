"""Errors that are the user's to fix: the command line prints them without a traceback."""


class UserError(Exception):
    """A problem with what the user gave us (a spec, a missing model, changed data)."""

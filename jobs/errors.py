"""Errors a job raises for the CLI or the scheduler to report in one line."""


class JobError(Exception):
    """A job cannot do its work (no promoted model yet, not enough history, ...)."""

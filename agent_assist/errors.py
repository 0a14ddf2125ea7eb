"""Errors whose message is a complete one-line explanation for the person at the keyboard."""


class AgentAssistError(Exception):
    """Base for expected failures: the CLI prints `error: <message>` and exits non-zero."""

    exit_code = 1


class AudioSourceError(AgentAssistError):
    """An audio file or device cannot be read (missing, corrupt, truncated, unsupported)."""

    exit_code = 2


class ModelError(AgentAssistError):
    """A speech or classifier model cannot be found or loaded."""

    exit_code = 3

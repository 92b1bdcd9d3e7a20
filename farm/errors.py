"""One error hierarchy for the whole farm; the CLI maps each class to an exit code.

Exit codes (see README): 0 done, 1 job failed, 2 refused (bad input or usage),
3 cancelled, 4 the farm itself is unavailable (broker, database, storage), 130 interrupted
(Ctrl-C; a job already submitted goes on).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_CANCELLED = 3
EXIT_UNAVAILABLE = 4
EXIT_INTERRUPTED = 130


class FarmError(Exception):
    """Base of every error the farm raises on purpose."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class InputError(FarmError):
    """The user's input (video, image, option) is refused; nothing was stored."""

    exit_code = EXIT_REFUSED


class ConfigError(FarmError):
    """A setting is missing or invalid."""

    exit_code = EXIT_REFUSED


class JobNotFound(FarmError):
    """No job has that id."""

    exit_code = EXIT_REFUSED


class StateError(FarmError):
    """A state transition that the state machine does not allow."""

    exit_code = EXIT_REFUSED


class MediaError(FarmError):
    """ffmpeg/PyAV failed on media the farm produced or accepted."""


class FrameCountMismatch(MediaError):
    """A chunk or the output has a different number of frames than planned."""


class VerifyError(MediaError):
    """The output does not match the source (frames, timestamps, duration, streams)."""


class ChunkCancelled(FarmError):
    """The job was cancelled while a chunk was running; nothing is published."""

    exit_code = EXIT_CANCELLED


class ModelError(FarmError):
    """A model pack is missing, unverified or does not match its manifest."""

    exit_code = EXIT_REFUSED


class ProviderError(FarmError):
    """An ONNX Runtime execution provider that was asked for cannot be had."""

    exit_code = EXIT_UNAVAILABLE


class UnavailableError(FarmError):
    """The broker, database or storage cannot be reached."""

    exit_code = EXIT_UNAVAILABLE

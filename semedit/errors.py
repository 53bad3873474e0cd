"""Typed exceptions: every message is written for the person who will read it."""


class SemeditError(Exception):
    """Base class of every error semedit raises on purpose."""


class CheckpointError(SemeditError):
    """A checkpoint file is unreadable, truncated or of an unsupported layout."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint asks to import or run code that we never execute."""


class ChecksumMismatchError(CheckpointError):
    """A downloaded or local file does not have the sha256 the catalogue expects."""


class ModelNotAvailableError(SemeditError):
    """A catalogued model can be found neither locally nor on the Hugging Face Hub."""


class UnknownModelError(SemeditError):
    """A model name that the catalogue does not list."""


class CatalogueError(SemeditError):
    """The model catalogue file is malformed."""


class SettingError(SemeditError, ValueError):
    """A setting a person gives (a step count, a weight, a number of chunks) is out of its range."""


class EditingError(SemeditError, ValueError):
    """An edit or a direction fit that cannot be made from what was given (too few or constant
    labels, a direction held fixed by its own conditions, a code where the attribute is flat)."""

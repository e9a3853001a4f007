"""Every error the library raises on purpose is an ``InBedderError``.

The app and the command line catch this one class and show its message; anything
else is a bug. Messages name the bad value, what was expected and how to fix it.
"""


class InBedderError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class CorpusError(InBedderError):
    """The input file or table cannot be read as a corpus.

    ``columns``: the table's column names when it was read but the text column was not found
    or held no document (a front end can offer them); empty otherwise.
    """

    def __init__(self, message: str, columns: list[str] | None = None) -> None:
        super().__init__(message)
        self.columns = list(columns or [])


class ModelError(InBedderError):
    """The model cannot be found, downloaded, recognised or loaded."""


class EncodingError(InBedderError):
    """Encoding failed (e.g. out of memory even at batch size 1)."""


class CacheError(InBedderError):
    """The embedding cache cannot be opened or written."""


class ClusteringError(InBedderError):
    """The reduce/cluster stages cannot run on the given input."""


class LabelingError(InBedderError):
    """Cluster naming failed in a way that cannot fall back (bad key, unknown model)."""


class ExportError(InBedderError):
    """Results cannot be written or read back."""


class EvaluationError(InBedderError):
    """An evaluation task's data or settings are unusable."""


class TrainingError(InBedderError):
    """Training settings or data are unusable, or a checkpoint does not match the run."""


class RunError(ExportError):
    """A saved run cannot be written, found or read."""


class MapError(InBedderError):
    """A big map cannot be drawn (Embedding Atlas missing or not as expected), or its selection cannot be applied."""

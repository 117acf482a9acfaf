"""Grids, volumes with geometry in the patient frame (LPS, mm), output helpers, provenance."""

from hepablate.core.output import atomic_output_dir
from hepablate.core.progress import NullProgress, Progress
from hepablate.core.provenance import file_sha256
from hepablate.core.volume import Volume

__all__ = ["Volume", "atomic_output_dir", "Progress", "NullProgress", "file_sha256"]

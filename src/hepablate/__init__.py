"""hepablate: planning and auditing image-guided percutaneous ablation of liver tumours."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hepablate")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]

"""HTTP API of the outcomes registry (`hepablate serve`)."""

from hepablate.api.app import create_app

__all__ = ["create_app"]

"""The outcomes registry: models (the shared data contract), database access and migrations,
users/roles/sites, the hash-chained audit trail, validation, the service layer, CSV
import/export and a synthetic data generator. See docs/registry.md."""

from hepablate.registry.audit import VerifyResult, verify
from hepablate.registry.auth import Actor, PermissionDenied
from hepablate.registry.csvio import (
    ImportFailed,
    export_dir,
    export_pseudonymised,
    import_dir,
    write_data_dictionary,
)
from hepablate.registry.db import connect, default_url, migrate
from hepablate.registry.models import ENTITIES
from hepablate.registry.service import Conflict, NotFound, Registry
from hepablate.registry.synthetic import generate
from hepablate.registry.validation import ValidationError

__all__ = [
    "ENTITIES",
    "Actor",
    "Conflict",
    "ImportFailed",
    "NotFound",
    "PermissionDenied",
    "Registry",
    "ValidationError",
    "VerifyResult",
    "connect",
    "default_url",
    "export_dir",
    "export_pseudonymised",
    "generate",
    "import_dir",
    "migrate",
    "verify",
    "write_data_dictionary",
]

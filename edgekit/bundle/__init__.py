"""The `.edgekit` bundle: manifest, hashing, atomic writes and verified loading.

Imports only the standard library and `edgekit.spec`.
"""

from edgekit.bundle.archive import (
    BUNDLE_SUFFIX,
    Bundle,
    manifest_bytes,
    open_bundle,
    require_bundle,
    sha256_bytes,
    sha256_file,
    write_bundle,
)
from edgekit.bundle.atomic import atomic_write_bytes, atomic_writer
from edgekit.bundle.manifest import (
    MANIFEST_NAME,
    FileEntry,
    Manifest,
    Variant,
    VariantFormat,
    make_provenance,
    tool_versions,
)
from edgekit.bundle.schema import SCHEMA_VERSION, manifest_schema, schema_path, validate

__all__ = [
    "BUNDLE_SUFFIX",
    "MANIFEST_NAME",
    "SCHEMA_VERSION",
    "Bundle",
    "FileEntry",
    "Manifest",
    "Variant",
    "VariantFormat",
    "atomic_write_bytes",
    "atomic_writer",
    "make_provenance",
    "manifest_bytes",
    "manifest_schema",
    "open_bundle",
    "require_bundle",
    "schema_path",
    "sha256_bytes",
    "sha256_file",
    "tool_versions",
    "validate",
    "write_bundle",
]

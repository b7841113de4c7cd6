"""Reading and writing ``NAME.edgekit`` archives.

A bundle is a ZIP archive (stored, not compressed, with fixed timestamps so the same
content gives the same bytes) holding ``manifest.json`` and the files it lists, and, once
signed, one more member, ``signature.json`` (see `edgekit.bundle.signature`). Loading
reads the archive into memory once, checks the signature when a public key is given (on
the raw manifest bytes, before they are parsed), the schema, the member list, every size
and every sha256, and only then hands out bytes; the bytes handed out are the bytes that
were hashed, so a file swapped after verification cannot be parsed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import lzma
import os
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from edgekit.bundle.atomic import atomic_writer
from edgekit.bundle.manifest import MANIFEST_NAME, FileEntry, Manifest
from edgekit.bundle.signature import SIGNATURE_NAME, check_signature, load_public_key
from edgekit.errors import InputError, IntegrityError, text_head

BUNDLE_SUFFIX = ".edgekit"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_SIGNATURE_BYTES = 64 * 1024
MAX_BUNDLE_BYTES = 8 * 1024 * 1024 * 1024
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# What reading a member of a damaged or hostile zip raises: a bad header or CRC, a stream
# cut short, an unsupported zip version or compression method, an encrypted member
# (RuntimeError), a corrupt deflate or LZMA stream.
ZIP_MEMBER_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError, zlib.error, lzma.LZMAError)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def manifest_bytes(manifest: Manifest) -> bytes:
    """Canonical serialization: sorted keys, two-space indent, UTF-8, trailing newline."""
    return (json.dumps(manifest.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def write_bundle(path: str | os.PathLike[str], manifest: Manifest, payloads: Mapping[str, bytes]) -> Manifest:
    """Write a bundle atomically and return the manifest as written.

    Args:
        path: destination, conventionally ``NAME.edgekit``.
        manifest: everything but `files`, which is computed from `payloads`.
        payloads: archive member name -> bytes; must include every variant's file and
            every member the manifest's `self_check` names.

    Returns:
        The manifest with `files` filled in.

    Raises:
        InputError: a variant file is missing from `payloads`, an unused payload, or
            the destination cannot be written.
    """
    files = {name: FileEntry(sha256_bytes(data), len(data)) for name, data in payloads.items()}
    final = dataclasses.replace(manifest, files=files)
    referenced = {v.file for v in final.variants} | set(final.self_check.members() if final.self_check else ())
    unused = sorted(set(payloads) - referenced)
    if unused:
        raise InputError("bundle payloads", expected="only files referenced by a variant or the self-check",
                         found=f"unreferenced {unused}")
    if SIGNATURE_NAME in payloads or MANIFEST_NAME in payloads:
        raise InputError("bundle payloads", expected=f"no member named {MANIFEST_NAME} or {SIGNATURE_NAME} "
                         "(reserved)", found=f"{sorted({SIGNATURE_NAME, MANIFEST_NAME} & set(payloads))}")
    # The manifest we write must be one we would load: same checks, same schema.
    try:
        Manifest.from_dict(json.loads(manifest_bytes(final)))
    except IntegrityError as exc:
        raise InputError("refusing to write an invalid bundle", found=str(exc)) from exc

    write_archive(path, [(MANIFEST_NAME, manifest_bytes(final)),
                         *((name, payloads[name]) for name in sorted(payloads))])
    return final


def write_archive(path: str | os.PathLike[str], members: Iterable[tuple[str, bytes]]) -> None:
    """Write `members` (name, bytes), in this order, as a bundle archive, atomically.

    Stored, not compressed, with fixed timestamps and modes, so the same members give
    the same bytes. Nothing is checked here: `write_bundle` and
    `edgekit.bundle.signing.sign_bundle` decide what goes in.
    """
    with atomic_writer(path) as handle:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, data in members:
                _add(archive, name, data)


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


@dataclasses.dataclass(frozen=True)
class Bundle:
    """A verified bundle held in memory.

    Attributes:
        path: where it was read from.
        manifest: the parsed, checked manifest.
        sha256: hash of the whole archive.
        size: archive size in bytes.
        manifest_raw: the exact bytes of ``manifest.json`` (what a signature covers).
        signature_raw: the bytes of ``signature.json``, or None for an unsigned bundle;
            checked only when `open_bundle` was given a public key.
        signed_by: fingerprint of the public key whose signature was checked, or None
            when no key was asked for.
    """

    path: Path
    manifest: Manifest
    sha256: str
    size: int
    _files: Mapping[str, bytes] = dataclasses.field(repr=False)
    manifest_raw: bytes = dataclasses.field(default=b"", repr=False)
    signature_raw: bytes | None = dataclasses.field(default=None, repr=False)
    signed_by: str | None = None

    def read(self, name: str) -> bytes:
        """Verified bytes of archive member `name`."""
        try:
            return self._files[name]
        except KeyError:
            raise InputError(f"bundle {self.path.name}", expected=f"a member named {name!r}",
                             found=f"only {sorted(self._files)}") from None

    def variant_bytes(self, variant: str) -> bytes:
        """Verified model bytes of the variant named `variant`."""
        return self.read(self.manifest.variant(variant).file)


# What a file that is not a bundle is, by its first bytes or, failing that, its name.
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
_MODEL_SUFFIXES = {".tflite": "a TFLite model", ".onnx": "an ONNX model", ".keras": "a Keras model",
                   ".h5": "a Keras .h5 model", ".hdf5": "a Keras .h5 model"}


def what_it_is(path: Path, head: bytes, members: list[str] | None = None) -> str | None:
    """What a file that is not an edgekit bundle is (a model to pack), or None when it
    may be one: a bundle's damage is reported as such, a model's name is not.

    Args:
        head: the file's first bytes (8 are enough).
        members: the names in it, when it is a ZIP archive without a manifest.
    """
    if len(head) >= 8 and head[4:8] == b"TFL3":
        return "a TFLite model"
    if head.startswith(_HDF5_MAGIC):
        return "a Keras .h5 model"
    if members is not None and "config.json" in members and any(m.endswith(".weights.h5") for m in members):
        return "a Keras model"
    suffix = path.suffix.lower()
    if suffix in _MODEL_SUFFIXES and not (head.startswith(_ZIP_MAGIC) and members is None and suffix != ".keras"):
        return _MODEL_SUFFIXES[suffix]
    return None


def not_a_bundle(path: Path, what: str) -> InputError:
    """The one-line error for a model given where a bundle is expected (exit 1, not 3: it
    is not a bundle that failed verification, it was never a bundle)."""
    stem = path.name.removesuffix(path.suffix) or "model"
    needs_spec = what in ("a TFLite model", "an ONNX model")
    command = (f"edgekit convert {path}" + (" --preprocess SPEC.yaml" if needs_spec else "")
               + f" -o {stem}{BUNDLE_SUFFIX}")
    return InputError(f"{path} is {what}, not an edgekit bundle", hint=f"pack it first: {command}")


def require_bundle(path: str | os.PathLike[str]) -> None:
    """Refuse, with what it is and the command that packs it, a model file given where a
    bundle is expected (`open_bundle` does this first; callers may ask earlier).

    Raises:
        InputError: `path` is a .tflite, .onnx, .keras, .h5 file or a SavedModel folder.
    """
    path = Path(path)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        raise not_a_bundle(path, "a SavedModel")
    if not path.is_file():
        return
    with path.open("rb") as handle:
        head = handle.read(8)
    what = what_it_is(path, head)
    if what is not None:
        raise not_a_bundle(path, what)


def not_an_archive(path: Path, data: bytes) -> InputError:
    """The one-line error for a file that is not a readable zip archive at all: empty, cut
    short, or something else (exit 1, not 3: damage to a file is reported as such; "failed
    verification" is said of a bundle whose hashes, members or signature do not match)."""
    size = len(data)
    rebuild = f"rebuild it (edgekit convert MODEL -o {path.stem or 'NAME'}{BUNDLE_SUFFIX})"
    if size == 0:
        found, hint = "an empty file (0 bytes)", f"copy it again, or {rebuild}"
    elif data.startswith(_ZIP_MAGIC):
        found = f"a zip archive cut short or damaged ({size} bytes, no readable table of contents at its end)"
        hint = f"the copy or download did not finish: copy it again, or {rebuild}"
    else:
        text = text_head(data)
        if text is not None:
            found = f"{size} bytes of text ({text!r}{'...' if size > 24 else ''}), not a zip archive"
        else:
            found = f"{size} bytes that are not a zip archive (they start {data[:4].hex(' ')})"
        hint = f"give the path of a .edgekit bundle, or {rebuild}"
    return InputError(f"bundle {path}", expected="an edgekit bundle (a zip archive)", found=found, hint=hint)


def _refuse(path: Path, found: str, hint: str = "the bundle is damaged or was tampered with; rebuild or re-copy it") -> IntegrityError:
    return IntegrityError(f"bundle {path} failed verification", found=found, hint=hint)


def open_bundle(path: str | os.PathLike[str], *, public_key: Any = None) -> Bundle:
    """Read and verify a bundle before any model byte is parsed.

    Args:
        path: the ``.edgekit`` bundle.
        public_key: when given, the bundle must carry a valid Ed25519 signature by this
            key over its exact manifest bytes, checked before the manifest is parsed:
            a path to a PEM public key (``KEY.pub`` from ``edgekit keygen``), PEM bytes,
            the 32 raw key bytes, or a ``cryptography`` ``Ed25519PublicKey`` (see
            `edgekit.bundle.signature.load_public_key`). None (the default) ignores any
            signature. Needs the ``cryptography`` package.

    Raises:
        InputError: the path does not exist or is not a regular file; it is empty, cut
            short or not a zip archive at all (`not_an_archive`); it is a model
            (.tflite, .onnx, .keras, .h5, SavedModel), not a bundle; the public key
            is missing or not an Ed25519 public key (MissingDependencyError without
            ``cryptography``).
        IntegrityError: a file over the size limit, a manifest that is not JSON or not
            schema-valid, an unknown schema version, a missing, extra or renamed
            member, or a size or sha256 mismatch; with `public_key`, an unsigned
            bundle or a signature that is unreadable, by another key, or not over
            this manifest.
    """
    key = None
    if public_key is not None:
        key = load_public_key(public_key)  # a bad key fails before the bundle is read
    path = Path(path)
    require_bundle(path)
    if not path.exists():
        raise InputError(f"bundle {path}", expected="an existing file", found="no such file",
                         hint="check the path")
    if not path.is_file():
        raise InputError(f"bundle {path}", expected="a file", found="a directory" if path.is_dir() else "not a regular file")
    size = path.stat().st_size
    if size > MAX_BUNDLE_BYTES:
        raise _refuse(path, f"{size} bytes, more than the {MAX_BUNDLE_BYTES} byte limit")
    data = path.read_bytes()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise not_an_archive(path, data) from exc
    with archive:
        return _verify(path, data, archive, key)


def _verify(path: Path, data: bytes, archive: zipfile.ZipFile, key: tuple[Any, str] | None = None) -> Bundle:
    infos = archive.infolist()
    names = [i.filename for i in infos]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise _refuse(path, f"duplicate archive members {dupes}")
    if MANIFEST_NAME not in names:
        what = what_it_is(path, data[:8], names)
        if what is not None:  # a .keras archive is a ZIP too
            raise not_a_bundle(path, what)
        raise _refuse(path, f"no {MANIFEST_NAME} in the archive (members: {sorted(names)[:5]})")
    manifest_info = archive.getinfo(MANIFEST_NAME)
    if manifest_info.file_size > MAX_MANIFEST_BYTES:
        raise _refuse(path, f"a {manifest_info.file_size}-byte manifest (limit {MAX_MANIFEST_BYTES})")
    raw = _read_member(path, archive, manifest_info)
    signature = None
    if SIGNATURE_NAME in names:
        signature_info = archive.getinfo(SIGNATURE_NAME)
        if signature_info.file_size > MAX_SIGNATURE_BYTES:
            raise _refuse(path, f"a {signature_info.file_size}-byte {SIGNATURE_NAME} (limit {MAX_SIGNATURE_BYTES})")
        signature = _read_member(path, archive, signature_info)
    signed_by = None
    if key is not None:  # authenticate the exact manifest bytes before parsing them
        signed_by = check_signature(path, raw, signature, *key)
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _refuse(path, f"{MANIFEST_NAME} is not valid JSON ({exc})") from exc
    try:
        manifest = Manifest.from_dict(document)
    except IntegrityError as exc:
        raise IntegrityError(f"bundle {path} failed verification: {exc.what}", expected=exc.expected,
                             found=exc.found, hint=exc.hint) from exc

    listed = set(manifest.files)
    if SIGNATURE_NAME in listed:
        raise _refuse(path, f"a manifest that lists {SIGNATURE_NAME}, a name reserved for the signature")
    members = set(names) - {MANIFEST_NAME, SIGNATURE_NAME}
    missing = sorted(listed - members)
    extra = sorted(members - listed)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"listed but absent {missing}")
        if extra:
            parts.append(f"present but not listed {extra}")
        raise _refuse(path, "archive members differ from the manifest: " + "; ".join(parts))

    files: dict[str, bytes] = {}
    for name in sorted(listed):
        entry = manifest.files[name]
        info = archive.getinfo(name)
        if info.file_size != entry.size:
            raise _refuse(path, f"{name} is {info.file_size} bytes, the manifest says {entry.size}")
        content = _read_member(path, archive, info)
        if len(content) != entry.size:
            raise _refuse(path, f"{name} is {len(content)} bytes, the manifest says {entry.size}")
        digest = sha256_bytes(content)
        if digest != entry.sha256:
            raise _refuse(path, f"{name} has sha256 {digest[:16]}..., the manifest says {entry.sha256[:16]}...")
        files[name] = content
    return Bundle(path=path, manifest=manifest, sha256=sha256_bytes(data), size=len(data), _files=files,
                  manifest_raw=raw, signature_raw=signature, signed_by=signed_by)


def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        with archive.open(info) as handle:
            content = handle.read(info.file_size + 1)
    except ZIP_MEMBER_ERRORS as exc:
        raise _refuse(path, f"member {info.filename} is unreadable ({exc})") from exc
    if len(content) > info.file_size:
        raise _refuse(path, f"member {info.filename} is longer than its header says")
    return content

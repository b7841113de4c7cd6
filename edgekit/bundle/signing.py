"""Signed bundles: Ed25519 keys, ``signature.json`` inside the bundle, and its check.

The signature is over the exact bytes of the bundle's ``manifest.json``, which already
holds the sha256 and size of every other member, so one signature covers the whole
bundle. It lives in the archive as one extra member, ``signature.json``::

    {
      "algorithm": "ed25519",
      "format": "edgekit-signature",
      "key_fingerprint": "sha256:<hex sha256 of the 32 raw public-key bytes>",
      "manifest_sha256": "<hex sha256 of manifest.json>",
      "signature": "<base64 of the 64-byte Ed25519 signature over manifest.json>",
      "version": 1
    }

Only ``signature`` decides; ``key_fingerprint`` and ``manifest_sha256`` are not
trusted, they only make a refusal say which key signed and whether the manifest
changed. Verification runs on the raw manifest bytes before the manifest is even
parsed as JSON (`edgekit.bundle.archive.open_bundle` with ``public_key=``), so nothing
of a bundle that fails it is parsed.

Keys are PEM files: the private key PKCS#8 (unencrypted, mode 0600), the public key
SubjectPublicKeyInfo, as ``openssl genpkey -algorithm ed25519`` writes them too.
Needs the ``cryptography`` package (``pip install "edgekit[sign]"``; the ``litert``
and ``onnx`` extras include it so that every device runtime can verify); it is
imported only when a key is used, so unsigned bundles load without it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from edgekit._optional import require
from edgekit.bundle.archive import MANIFEST_NAME, SIGNATURE_NAME, _add, open_bundle
from edgekit.bundle.atomic import atomic_writer
from edgekit.errors import InputError, IntegrityError, MissingDependencyError

ALGORITHM = "ed25519"
SIGNATURE_FORMAT = "edgekit-signature"
SIGNATURE_VERSION = 1
MAX_KEY_FILE_BYTES = 64 * 1024
PUBLIC_SUFFIX = ".pub"
_FINGERPRINT = re.compile(r"sha256:[0-9a-f]{64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclasses.dataclass(frozen=True)
class KeyPair:
    """What `generate_keypair` wrote."""

    private: Path
    public: Path
    fingerprint: str


@dataclasses.dataclass(frozen=True)
class Signed:
    """What `sign_bundle` did."""

    bundle: Path
    fingerprint: str
    manifest_sha256: str
    replaced: str | None  # fingerprint of the signature it replaced, if any


def _ed25519() -> Any:
    """The cryptography module for Ed25519 (one-line install hint when missing)."""
    purpose = "signing and verifying bundles"
    try:
        require("cryptography", purpose)
        return require("cryptography.hazmat.primitives.asymmetric.ed25519", purpose)
    except MissingDependencyError as exc:
        raise MissingDependencyError(exc.what, expected=exc.expected, found=exc.found,
                                     hint='install it with: pip install "edgekit[sign]" '
                                     '(the litert and onnx extras include it)') from exc


def _serialization() -> Any:
    _ed25519()
    from cryptography.hazmat.primitives import serialization

    return serialization


def fingerprint(public_key: Any) -> str:
    """``sha256:`` and the hex sha256 of the 32 raw bytes of an Ed25519 public key."""
    s = _serialization()
    raw = public_key.public_bytes(encoding=s.Encoding.Raw, format=s.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _read_key_file(path: Path, kind: str) -> bytes:
    what = f"{kind} key {path}"
    if not path.exists():
        raise InputError(what, expected="an existing file", found="no such file",
                         hint="make a key pair with: edgekit keygen -o KEY")
    if not path.is_file():
        raise InputError(what, expected="a PEM file", found="a directory" if path.is_dir() else "not a regular file")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(what, expected="a readable file", found=exc.strerror or str(exc)) from exc
    if len(data) > MAX_KEY_FILE_BYTES:
        raise InputError(what, expected="a PEM key file of a few hundred bytes",
                         found=f"more than {MAX_KEY_FILE_BYTES} bytes")
    return data


def _pem_kind(data: bytes) -> str | None:
    if b"-----BEGIN " not in data:
        return None
    return "private" if b"PRIVATE KEY-----" in data else "public" if b"PUBLIC KEY-----" in data else "other"


def load_private_key(key: str | os.PathLike[str] | bytes | Any) -> Any:
    """An Ed25519 private key from a PEM file path, PEM bytes, or a key object.

    Raises:
        InputError: a missing or unreadable file, a public key, an encrypted or
            non-Ed25519 key, or something that is not a PEM key at all.
    """
    ed = _ed25519()
    if isinstance(key, ed.Ed25519PrivateKey):
        return key
    if isinstance(key, bytes):
        data, what = key, "private key (bytes)"
    else:
        path = Path(key)
        data, what = _read_key_file(path, "private"), f"private key {path}"
    expected = "an Ed25519 private key in PEM (the KEY that edgekit keygen -o KEY writes)"
    kind = _pem_kind(data)
    if kind == "public":
        raise InputError(what, expected=expected, found="a public key",
                         hint="sign with the private key KEY, not KEY.pub (the public half verifies)")
    if kind != "private":
        raise InputError(what, expected=expected, found="no PEM private key in the file")
    s = _serialization()
    try:
        loaded = s.load_pem_private_key(data, password=None)
    except TypeError as exc:  # encrypted
        raise InputError(what, expected=expected + ", unencrypted", found="an encrypted key",
                         hint="decrypt it: openssl pkey -in KEY -out PLAIN.pem") from exc
    except Exception as exc:  # ValueError, cryptography's UnsupportedAlgorithm
        raise InputError(what, expected=expected, found=f"an unreadable key ({_first_line(exc)})") from exc
    if not isinstance(loaded, ed.Ed25519PrivateKey):
        raise InputError(what, expected=expected, found=f"a {type(loaded).__name__.lstrip('_')}")
    return loaded


def load_public_key(key: str | os.PathLike[str] | bytes | Any) -> tuple[Any, str]:
    """An Ed25519 public key and a description of where it came from.

    `key` is a path to a PEM public key (``KEY.pub`` from ``edgekit keygen``), PEM
    bytes, the 32 raw public-key bytes, or an ``Ed25519PublicKey`` object. A private
    key is refused: devices only ever need the public half.

    Raises:
        InputError: a missing or unreadable file, a private key, a non-Ed25519 key,
            or something that is not a key.
    """
    ed = _ed25519()
    if isinstance(key, ed.Ed25519PublicKey):
        return key, "the given key"
    if isinstance(key, ed.Ed25519PrivateKey):
        raise InputError("public key", expected="an Ed25519 public key", found="a private key object",
                         hint="pass private_key.public_key()")
    if isinstance(key, (bytes, bytearray, memoryview)):
        data, what, source = bytes(key), "public key (bytes)", "the given key bytes"
        if len(data) == 32 and _pem_kind(data) is None:
            return ed.Ed25519PublicKey.from_public_bytes(data), source
    elif isinstance(key, (str, os.PathLike)):
        path = Path(key)
        data, what, source = _read_key_file(path, "public"), f"public key {path}", str(path)
    else:
        raise InputError("public key", expected="a path to a PEM file, PEM bytes, 32 raw bytes or an "
                         "Ed25519PublicKey", found=type(key).__name__)
    expected = "an Ed25519 public key in PEM (the KEY.pub that edgekit keygen -o KEY writes)"
    kind = _pem_kind(data)
    if kind == "private":
        raise InputError(what, expected=expected, found="a private key",
                         hint="give devices KEY.pub; the private key stays on the signing machine")
    if kind != "public":
        raise InputError(what, expected=expected, found="no PEM public key in the file")
    s = _serialization()
    try:
        loaded = s.load_pem_public_key(data)
    except Exception as exc:  # ValueError, UnsupportedAlgorithm
        raise InputError(what, expected=expected, found=f"an unreadable key ({_first_line(exc)})") from exc
    if not isinstance(loaded, ed.Ed25519PublicKey):
        raise InputError(what, expected=expected, found=f"a {type(loaded).__name__.lstrip('_')}")
    return loaded, source


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def generate_keypair(path: str | os.PathLike[str], *, force: bool = False) -> KeyPair:
    """Write a new Ed25519 private key to `path` (PEM, mode 0600) and its public key to
    ``path + ".pub"`` (PEM), each atomically.

    Raises:
        InputError: either file exists and `force` is false, or the directory is not
            writable.
    """
    private = Path(path)
    public = private.with_name(private.name + PUBLIC_SUFFIX)
    if private.name.endswith(PUBLIC_SUFFIX):
        raise InputError(f"key path {private}", expected="the private key's name (KEY.pub is written next to it)",
                         found=f"a name ending in {PUBLIC_SUFFIX}", hint="use e.g. -o signing.key")
    existing = [p for p in (private, public) if p.exists() or p.is_symlink()]
    if existing and not force:
        raise InputError(f"key {existing[0]}", expected="a new file", found="it already exists",
                         hint="choose another -o, or pass --force to replace the key pair (bundles signed "
                         "with the old key will no longer verify with the new one)")
    for p in existing:
        if p.is_dir():
            raise InputError(f"key {p}", expected="a file path", found="a directory")
    ed = _ed25519()
    s = _serialization()
    key = ed.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(encoding=s.Encoding.PEM, format=s.PrivateFormat.PKCS8,
                                    encryption_algorithm=s.NoEncryption())
    public_pem = key.public_key().public_bytes(encoding=s.Encoding.PEM, format=s.PublicFormat.SubjectPublicKeyInfo)
    with atomic_writer(private, mode=0o600) as handle:
        os.fchmod(handle.fileno(), 0o600)  # whatever the umask
        handle.write(private_pem)
    with atomic_writer(public, mode=0o644) as handle:
        handle.write(public_pem)
    return KeyPair(private=private, public=public, fingerprint=fingerprint(key.public_key()))


def signature_document(manifest_raw: bytes, private_key: Any) -> bytes:
    """The bytes of ``signature.json`` for these exact manifest bytes."""
    document = {
        "format": SIGNATURE_FORMAT,
        "version": SIGNATURE_VERSION,
        "algorithm": ALGORITHM,
        "key_fingerprint": fingerprint(private_key.public_key()),
        "manifest_sha256": hashlib.sha256(manifest_raw).hexdigest(),
        "signature": base64.b64encode(private_key.sign(manifest_raw)).decode("ascii"),
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def sign_bundle(path: str | os.PathLike[str], key: str | os.PathLike[str] | bytes | Any) -> Signed:
    """Sign a bundle in place: verify it, then rewrite it atomically with ``signature.json``.

    The bundle is verified first (a damaged bundle is not signed); an existing
    signature is replaced. The rewrite goes through a temp file, fsync and rename, so a
    failed sign leaves the previous bundle as it was.

    Args:
        path: the ``.edgekit`` bundle.
        key: the private key: a PEM file path, PEM bytes or an ``Ed25519PrivateKey``.

    Raises:
        InputError: a missing bundle or key, a public key given, an unwritable directory.
        IntegrityError: the bundle fails verification.
    """
    private_key = load_private_key(key)
    bundle = open_bundle(path)
    previous = None
    if bundle.signature_raw is not None:
        parsed = _parse_signature(bundle.signature_raw)
        previous = "an unreadable signature" if isinstance(parsed, str) else parsed[1]
    manifest_raw = bundle.manifest_raw
    signature = signature_document(manifest_raw, private_key)
    with atomic_writer(bundle.path) as handle:
        import zipfile

        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
            _add(archive, MANIFEST_NAME, manifest_raw)
            for name in sorted(bundle.manifest.files):
                _add(archive, name, bundle.read(name))
            _add(archive, SIGNATURE_NAME, signature)
    return Signed(bundle=bundle.path, fingerprint=fingerprint(private_key.public_key()),
                  manifest_sha256=hashlib.sha256(manifest_raw).hexdigest(), replaced=previous)


def check_signature(bundle: Path, manifest_raw: bytes, signature_raw: bytes | None, public_key: Any,
                    source: str) -> str:
    """Check ``signature.json`` against the exact manifest bytes; returns the key's fingerprint.

    `public_key` comes from `load_public_key` (`source` says where from, for messages).
    Called by `open_bundle` before the manifest is parsed.

    Raises:
        IntegrityError: no signature, an unreadable one, another key's, or one that
            does not match these manifest bytes.
    """
    expected_fp = fingerprint(public_key)
    what = f"bundle {bundle} failed signature verification"
    expected = f"a signature by key {expected_fp} ({source})"
    if signature_raw is None:
        raise IntegrityError(what, expected=expected, found=f"an unsigned bundle (no {SIGNATURE_NAME})",
                             hint=f"sign it with: edgekit sign {bundle} --key KEY, or get the signed copy")
    document = _parse_signature(signature_raw)
    if isinstance(document, str):
        raise IntegrityError(what, expected=expected + f" in a valid {SIGNATURE_NAME}",
                             found=f"{SIGNATURE_NAME} {document}",
                             hint="the signature is damaged or was tampered with; re-sign the bundle with "
                             "edgekit sign or re-copy it")
    signature, claimed_fp, claimed_manifest = document
    actual_manifest = hashlib.sha256(manifest_raw).hexdigest()
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(signature, manifest_raw)
    except InvalidSignature as exc:
        if claimed_fp != expected_fp:
            raise IntegrityError(what, expected=expected, found=f"a signature by another key ({claimed_fp})",
                                 hint="verify with the public key that signed it, or re-sign the bundle with "
                                 "your key") from exc
        if claimed_manifest != actual_manifest:
            raise IntegrityError(what, expected=expected + f" over this manifest (sha256 {actual_manifest[:16]}...)",
                                 found=f"a signature over another manifest (sha256 {claimed_manifest[:16]}...)",
                                 hint="the manifest was changed after signing, or the signature was copied "
                                 "from another bundle; re-copy the signed bundle, or rebuild it and sign it "
                                 "again") from exc
        raise IntegrityError(what, expected=expected, found="a signature that does not match the manifest",
                             hint="the bundle or its signature was tampered with; re-copy the signed "
                             "bundle, or rebuild it and sign it again") from exc
    return expected_fp


def _parse_signature(raw: bytes) -> tuple[bytes, str, str] | str:
    """(signature, claimed fingerprint, claimed manifest sha256), or why it is unreadable."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "is not JSON"
    if not isinstance(document, dict):
        return f"is JSON but not an object ({type(document).__name__})"
    if document.get("format") != SIGNATURE_FORMAT or document.get("version") != SIGNATURE_VERSION:
        return (f"is not an {SIGNATURE_FORMAT} version {SIGNATURE_VERSION} document "
                f"(format {_short(document.get('format'))}, version {_short(document.get('version'))})")
    if document.get("algorithm") != ALGORITHM:
        return f"has algorithm {_short(document.get('algorithm'))}, not {ALGORITHM!r}"
    encoded = document.get("signature")
    if not isinstance(encoded, str):
        return "has no signature string"
    try:
        signature = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return "has a signature that is not base64"
    if len(signature) != 64:
        return f"has a {len(signature)}-byte signature (Ed25519 signatures are 64 bytes)"
    claimed_fp, claimed_manifest = document.get("key_fingerprint"), document.get("manifest_sha256")
    if not isinstance(claimed_fp, str) or not _FINGERPRINT.fullmatch(claimed_fp):
        return "has no key_fingerprint of the form sha256:<64 hex digits>"
    if not isinstance(claimed_manifest, str) or not _SHA256.fullmatch(claimed_manifest):
        return "has no manifest_sha256 of 64 hex digits"
    return signature, claimed_fp, claimed_manifest


def _short(value: Any) -> str:
    """A repr safe for a one-line message (attacker-controlled values are cut short)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

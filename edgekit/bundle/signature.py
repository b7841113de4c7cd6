"""The bundle's signature: ``signature.json``, Ed25519 public keys, and the check `open_bundle` runs.

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

This module is what a device needs to verify; making keys and signing is
`edgekit.bundle.signing`, which reads and writes bundles through `edgekit.bundle.archive`
(this module imports neither). Public keys are PEM SubjectPublicKeyInfo files, as
``openssl pkey -pubout`` writes them too. Needs the ``cryptography`` package
(``pip install "edgekit-ml[sign]"``; the ``litert`` and ``onnx`` extras include it so that
every device runtime can verify); it is imported only when a key is used, so unsigned
bundles load without it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from edgekit._optional import extra_install, require
from edgekit.errors import InputError, IntegrityError, MissingDependencyError

SIGNATURE_NAME = "signature.json"  # the one archive member not listed in the manifest
ALGORITHM = "ed25519"
SIGNATURE_FORMAT = "edgekit-signature"
SIGNATURE_VERSION = 1
MAX_KEY_FILE_BYTES = 64 * 1024
_FINGERPRINT = re.compile(r"sha256:[0-9a-f]{64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def crypto_ed25519() -> Any:
    """The cryptography module for Ed25519 (one-line install hint when missing)."""
    purpose = "signing and verifying bundles"
    try:
        require("cryptography", purpose)
        return require("cryptography.hazmat.primitives.asymmetric.ed25519", purpose)
    except MissingDependencyError as exc:
        raise MissingDependencyError(exc.what, expected=exc.expected, found=exc.found,
                                     hint=f"install it with: {extra_install('sign')} "
                                     '(the litert and onnx extras include it)') from exc


def crypto_serialization() -> Any:
    """cryptography's serialization module (after the same check as `crypto_ed25519`)."""
    crypto_ed25519()
    from cryptography.hazmat.primitives import serialization

    return serialization


def fingerprint(public_key: Any) -> str:
    """``sha256:`` and the hex sha256 of the 32 raw bytes of an Ed25519 public key."""
    s = crypto_serialization()
    raw = public_key.public_bytes(encoding=s.Encoding.Raw, format=s.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def read_key_file(path: Path, kind: str) -> bytes:
    """The bytes of a PEM key file (`kind` is ``public`` or ``private``, for messages).

    Raises:
        InputError: missing, not a file, unreadable, or far larger than a key.
    """
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


def pem_kind(data: bytes) -> str | None:
    """``private``, ``public`` or ``other`` for PEM data; None when it is not PEM."""
    if b"-----BEGIN " not in data:
        return None
    return "private" if b"PRIVATE KEY-----" in data else "public" if b"PUBLIC KEY-----" in data else "other"


def load_public_key(key: str | os.PathLike[str] | bytes | Any) -> tuple[Any, str]:
    """An Ed25519 public key and a description of where it came from.

    `key` is a path to a PEM public key (``KEY.pub`` from ``edgekit keygen``), PEM
    bytes, the 32 raw public-key bytes, or an ``Ed25519PublicKey`` object. A private
    key is refused: devices only ever need the public half.

    Raises:
        InputError: a missing or unreadable file, a private key, a non-Ed25519 key,
            or something that is not a key.
    """
    ed = crypto_ed25519()
    if isinstance(key, ed.Ed25519PublicKey):
        return key, "the given key"
    if isinstance(key, ed.Ed25519PrivateKey):
        raise InputError("public key", expected="an Ed25519 public key", found="a private key object",
                         hint="pass private_key.public_key()")
    if isinstance(key, (bytes, bytearray, memoryview)):
        data, what, source = bytes(key), "public key (bytes)", "the given key bytes"
        if len(data) == 32 and pem_kind(data) is None:
            return ed.Ed25519PublicKey.from_public_bytes(data), source
    elif isinstance(key, (str, os.PathLike)):
        path = Path(key)
        data, what, source = read_key_file(path, "public"), f"public key {path}", str(path)
    else:
        raise InputError("public key", expected="a path to a PEM file, PEM bytes, 32 raw bytes or an "
                         "Ed25519PublicKey", found=type(key).__name__)
    expected = "an Ed25519 public key in PEM (the KEY.pub that edgekit keygen -o KEY writes)"
    kind = pem_kind(data)
    if kind == "private":
        raise InputError(what, expected=expected, found="a private key",
                         hint="give devices KEY.pub; the private key stays on the signing machine")
    if kind != "public":
        raise InputError(what, expected=expected, found="no PEM public key in the file")
    s = crypto_serialization()
    try:
        loaded = s.load_pem_public_key(data)
    except Exception as exc:  # ValueError, UnsupportedAlgorithm
        raise InputError(what, expected=expected, found=f"an unreadable key ({first_line(exc)})") from exc
    if not isinstance(loaded, ed.Ed25519PublicKey):
        raise InputError(what, expected=expected, found=f"a {type(loaded).__name__.lstrip('_')}")
    return loaded, source


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text, cut to 200 characters, for one-line messages."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


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
    document = parse_signature(signature_raw)
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


def parse_signature(raw: bytes) -> tuple[bytes, str, str] | str:
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

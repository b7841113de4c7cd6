"""Signing bundles: Ed25519 key pairs, private keys, and ``signature.json`` written into a bundle.

What a signature is and how `open_bundle` checks it (public keys included) is
`edgekit.bundle.signature`; this module is the signing machine's side. Private keys are
PEM PKCS#8 files (unencrypted, mode 0600), as ``openssl genpkey -algorithm ed25519``
writes them too. Needs the ``cryptography`` package (``pip install "edgekit-ml[sign]"``).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from edgekit.bundle.archive import open_bundle, write_archive
from edgekit.bundle.atomic import atomic_writer
from edgekit.bundle.manifest import MANIFEST_NAME
from edgekit.bundle.signature import (
    ALGORITHM,
    SIGNATURE_FORMAT,
    SIGNATURE_NAME,
    SIGNATURE_VERSION,
    crypto_ed25519,
    crypto_serialization,
    fingerprint,
    first_line,
    load_public_key,
    parse_signature,
    pem_kind,
    read_key_file,
)
from edgekit.errors import InputError

__all__ = [
    "PUBLIC_SUFFIX",
    "KeyPair",
    "Signed",
    "fingerprint",
    "generate_keypair",
    "load_private_key",
    "load_public_key",
    "sign_bundle",
    "signature_document",
]

PUBLIC_SUFFIX = ".pub"


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


def load_private_key(key: str | os.PathLike[str] | bytes | Any) -> Any:
    """An Ed25519 private key from a PEM file path, PEM bytes, or a key object.

    Raises:
        InputError: a missing or unreadable file, a public key, an encrypted or
            non-Ed25519 key, or something that is not a PEM key at all.
    """
    ed = crypto_ed25519()
    if isinstance(key, ed.Ed25519PrivateKey):
        return key
    if isinstance(key, bytes):
        data, what = key, "private key (bytes)"
    else:
        path = Path(key)
        data, what = read_key_file(path, "private"), f"private key {path}"
    expected = "an Ed25519 private key in PEM (the KEY that edgekit keygen -o KEY writes)"
    kind = pem_kind(data)
    if kind == "public":
        raise InputError(what, expected=expected, found="a public key",
                         hint="sign with the private key KEY, not KEY.pub (the public half verifies)")
    if kind != "private":
        raise InputError(what, expected=expected, found="no PEM private key in the file")
    s = crypto_serialization()
    try:
        loaded = s.load_pem_private_key(data, password=None)
    except TypeError as exc:  # encrypted
        raise InputError(what, expected=expected + ", unencrypted", found="an encrypted key",
                         hint="decrypt it: openssl pkey -in KEY -out PLAIN.pem") from exc
    except Exception as exc:  # ValueError, cryptography's UnsupportedAlgorithm
        raise InputError(what, expected=expected, found=f"an unreadable key ({first_line(exc)})") from exc
    if not isinstance(loaded, ed.Ed25519PrivateKey):
        raise InputError(what, expected=expected, found=f"a {type(loaded).__name__.lstrip('_')}")
    return loaded


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
    ed = crypto_ed25519()
    s = crypto_serialization()
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
        parsed = parse_signature(bundle.signature_raw)
        previous = "an unreadable signature" if isinstance(parsed, str) else parsed[1]
    manifest_raw = bundle.manifest_raw
    signature = signature_document(manifest_raw, private_key)
    write_archive(bundle.path, [(MANIFEST_NAME, manifest_raw),
                                *((name, bundle.read(name)) for name in sorted(bundle.manifest.files)),
                                (SIGNATURE_NAME, signature)])
    return Signed(bundle=bundle.path, fingerprint=fingerprint(private_key.public_key()),
                  manifest_sha256=hashlib.sha256(manifest_raw).hexdigest(), replaced=previous)

"""Model integrity: sha256 digests and Ed25519 signatures.

The trainer signs every published model; the client SDK verifies the download
before swapping it in. Both import this module, so it stays pure: hashlib and
``cryptography`` only, no TensorFlow, no cloud clients.

Keys travel as PEM text (PKCS#8 private, SubjectPublicKeyInfo public) and
signatures as base64 text, so all of them fit in config, Secret Manager and
Firestore documents unchanged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_BYTES = 64  # every Ed25519 signature has exactly this length
KEY_FILE_MODE = 0o600


def sha256_hex(data: bytes) -> str:
    """The lowercase hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def md5_b64(data: bytes) -> str:
    """The base64 MD5 digest Cloud Storage reports as ``md5Hash`` (a transfer check, not a security one)."""
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def _text(pem: str | bytes) -> bytes:
    return pem.encode("ascii") if isinstance(pem, str) else bytes(pem)


def _private_key(private_pem: str | bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(_text(private_pem), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"expected an Ed25519 private key, got {type(key).__name__}")
    return key


def generate_private_key_pem() -> str:
    """A new Ed25519 private key as unencrypted PKCS#8 PEM."""
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode("ascii")
    )


def public_key_pem(private_pem: str | bytes) -> str:
    """The public half of a private key, as the PEM clients are configured with."""
    return (
        _private_key(private_pem)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def sign(private_pem: str | bytes, data: bytes) -> str:
    """The base64 Ed25519 signature of ``data``."""
    return base64.b64encode(_private_key(private_pem).sign(data)).decode("ascii")


def verify(public_pem: str | bytes, data: bytes, signature_b64: str | bytes) -> bool:
    """True only if ``signature_b64`` is a valid signature of exactly ``data`` by that key.

    Every kind of bad input (tampered data, another key, a malformed or
    truncated signature, a broken or non-Ed25519 key, wrong types) gives False
    and never raises: a device must refuse the model, not crash on it.
    """
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        if len(signature) != SIGNATURE_BYTES:
            return False
        key = serialization.load_pem_public_key(_text(public_pem))
        if not isinstance(key, Ed25519PublicKey):
            return False
        key.verify(signature, bytes(data))
        return True
    except (InvalidSignature, binascii.Error, ValueError, TypeError, UnicodeError):
        return False


def load_or_create_dev_key(path: str | os.PathLike[str]) -> str:
    """The local development signing key at ``path``, created (mode 0600) on first use.

    Production keys come from config or Secret Manager; this is for the local
    stack. Creation is atomic: the key is written to a private temporary file
    and hard-linked into place, so a concurrent caller never reads half a key
    and two first runs agree on one key.
    """
    target = Path(path)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".signing-key-")
        try:
            os.fchmod(descriptor, KEY_FILE_MODE)
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(generate_private_key_pem())
            try:
                os.link(temporary, target)
            except FileExistsError:
                pass  # another process created it first: use that key
        finally:
            os.unlink(temporary)
    private_pem = target.read_text(encoding="ascii")
    _private_key(private_pem)  # fail loudly here, not at the first signature, if the file is not a key
    return private_pem


def signing_key(configured_pem: str | None, dev_key_path: str | os.PathLike[str]) -> str:
    """The configured signing key (production: from Secret Manager), else the local development key."""
    if configured_pem:
        _private_key(configured_pem)  # a misconfigured secret fails here, before anything is trained
        return configured_pem
    return load_or_create_dev_key(dev_key_path)

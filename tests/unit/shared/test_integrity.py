"""Signatures protect the published model: tampering with the file or the signature is detected."""

import base64
import stat

import pytest

from shared import integrity

MODEL = b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 8


@pytest.fixture(scope="module")
def private_pem():
    return integrity.generate_private_key_pem()


def test_sha256_is_the_hex_digest_of_the_bytes():
    assert integrity.sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert integrity.sha256_hex(MODEL) != integrity.sha256_hex(MODEL + b"\x00")


def test_a_signature_verifies_with_the_matching_public_key(private_pem):
    signature = integrity.sign(private_pem, MODEL)
    assert len(base64.b64decode(signature)) == 64
    assert integrity.verify(integrity.public_key_pem(private_pem), MODEL, signature)


def test_a_single_flipped_byte_in_the_model_breaks_verification(private_pem):
    signature = integrity.sign(private_pem, MODEL)
    tampered = bytearray(MODEL)
    tampered[100] ^= 0x01
    assert not integrity.verify(integrity.public_key_pem(private_pem), bytes(tampered), signature)
    assert not integrity.verify(integrity.public_key_pem(private_pem), MODEL + b"\x00", signature)


def test_a_tampered_signature_fails(private_pem):
    raw = bytearray(base64.b64decode(integrity.sign(private_pem, MODEL)))
    raw[0] ^= 0x80
    assert not integrity.verify(integrity.public_key_pem(private_pem), MODEL, base64.b64encode(bytes(raw)).decode())


def test_another_keys_signature_fails(private_pem):
    other = integrity.generate_private_key_pem()
    assert not integrity.verify(integrity.public_key_pem(private_pem), MODEL, integrity.sign(other, MODEL))


@pytest.mark.parametrize(
    "signature",
    ["", "not base64!", "AAAA", base64.b64encode(b"x" * 63).decode(), base64.b64encode(b"x" * 65).decode(), None, 42],
)
def test_malformed_signatures_return_false_instead_of_raising(private_pem, signature):
    assert integrity.verify(integrity.public_key_pem(private_pem), MODEL, signature) is False


@pytest.mark.parametrize("public_pem", ["", "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n", None])
def test_a_broken_public_key_returns_false_instead_of_raising(private_pem, public_pem):
    assert integrity.verify(public_pem, MODEL, integrity.sign(private_pem, MODEL)) is False


def test_a_non_ed25519_public_key_is_refused(private_pem):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert integrity.verify(ec_public, MODEL, integrity.sign(private_pem, MODEL)) is False


def test_the_dev_key_is_created_private_on_first_use_and_reused_after(tmp_path):
    path = tmp_path / "keys" / "signing.pem"
    first = integrity.load_or_create_dev_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert integrity.load_or_create_dev_key(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["signing.pem"]  # no temporary files left behind
    assert integrity.verify(integrity.public_key_pem(first), MODEL, integrity.sign(first, MODEL))


def test_a_key_file_that_is_not_a_key_is_refused_loudly(tmp_path):
    path = tmp_path / "signing.pem"
    path.write_text("not a key")
    with pytest.raises(ValueError):
        integrity.load_or_create_dev_key(path)


def test_integrity_stays_importable_on_a_device_without_tensorflow_or_cloud_clients():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(integrity.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "base64", "binascii", "hashlib", "os", "tempfile", "pathlib", "cryptography"}

"""A downloaded model becomes active only if it is exactly the file the pointer promised, signed by
the pinned key, and describes itself as the pointer does; each failure names its reason."""

import pytest

from client_sdk.contract import check_supported, verify_model
from client_sdk.errors import ModelRefused, RefusalReason
from client_sdk.runtime import packed_labels
from shared import integrity
from shared.digits import LABELS
from shared.registry import ModelInput
from tests.model_fixtures import digits, make_ref, signing_key, trained_models  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def v1(trained_models):
    return trained_models["v1"].data


def refused(reason, ref, data, key):
    with pytest.raises(ModelRefused) as caught:
        verify_model(ref, data, key)
    assert caught.value.reason is reason, caught.value
    return caught.value


def test_the_published_model_verifies_and_classifies_digits(v1, signing_key, digits):
    model = verify_model(make_ref("digits", "v1", v1, signing_key), v1, signing_key.public_pem)
    assert model.input.shape == (1, 32, 32, 3) and model.input.dtype == "uint8"
    correct = sum(int(model.scores(d.rgb).argmax()) == int(d.label) for d in digits[-200:])
    assert correct / 200 > 0.8


def test_the_labels_are_read_from_the_file_packed_in_the_model(v1):
    assert packed_labels(v1) == LABELS


def test_a_truncated_download_is_refused(v1, signing_key):
    refused(RefusalReason.SIZE_MISMATCH, make_ref("digits", "v1", v1, signing_key), v1[:-100], signing_key.public_pem)


def test_a_corrupted_byte_is_refused(v1, signing_key):
    corrupted = bytearray(v1)
    corrupted[len(v1) // 2] ^= 0x01
    error = refused(RefusalReason.DIGEST_MISMATCH, make_ref("digits", "v1", v1, signing_key), bytes(corrupted), signing_key.public_pem)
    assert integrity.sha256_hex(v1) in str(error)


def test_a_model_signed_by_another_key_is_refused(v1, signing_key):
    other = integrity.generate_private_key_pem()
    ref = make_ref("digits", "v1", v1, signing_key, signature=integrity.sign(other, v1))
    refused(RefusalReason.BAD_SIGNATURE, ref, v1, signing_key.public_pem)


def test_a_model_whose_packed_labels_differ_from_the_pointer_is_refused(v1, signing_key):
    ref = make_ref("digits", "v1", v1, signing_key, labels=tuple("abcdefghij"))
    refused(RefusalReason.CONTRACT_VIOLATION, ref, v1, signing_key.public_pem)


def test_a_model_whose_input_differs_from_the_pointer_is_refused(v1, signing_key):
    ref = make_ref("digits", "v1", v1, signing_key, input=ModelInput(height=28, width=28))
    error = refused(RefusalReason.CONTRACT_VIOLATION, ref, v1, signing_key.public_pem)
    assert "(1, 32, 32, 3)" in str(error)


def test_bytes_that_are_no_model_at_all_are_refused_even_when_signed(signing_key):
    junk = b"not a tflite model" * 100
    refused(RefusalReason.CONTRACT_VIOLATION, make_ref("digits", "v1", junk, signing_key), junk, signing_key.public_pem)


def test_a_model_needing_a_newer_sdk_or_another_input_type_is_refused_before_download(v1, signing_key):
    with pytest.raises(ModelRefused, match="needs SDK contract 99"):
        check_supported(make_ref("digits", "v1", v1, signing_key, min_sdk_version=99))
    with pytest.raises(ModelRefused, match="float32"):
        check_supported(make_ref("digits", "v1", v1, signing_key, input=ModelInput(height=32, width=32, dtype="float32")))

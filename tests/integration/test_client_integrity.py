"""Client integrity: a model that is not exactly what the trainer signed never becomes active.

The real client_sdk (its downloader, ``contract.verify_model`` and store) against
the local stack, with real signed TFLite models: each bad publish is made the way
an attacker or a broken publisher would make it (stored bytes and/or the pointer
document written with admin rights), and the device must refuse it, keep serving
the previous model, remember the refusal after a restart, and never name the bad
bytes as a model file. Nothing here mocks the verifier.

Covered elsewhere and not repeated: a flipped byte (DIGEST_MISMATCH), a file cut
in half (SIZE_MISMATCH), a signature by another key (BAD_SIGNATURE) and packed
labels contradicting the pointer in tests/integration/test_client_sdk.py; the
same checks on bytes alone in tests/unit/client_sdk/test_contract.py and
tests/unit/shared/test_integrity.py.
"""

from __future__ import annotations

import base64

import pytest

from client_sdk import PointerError, RefusalReason, UpdateStatus
from shared import integrity, layout
from tests.integration.helpers import db
from tests.integration.test_client_sdk import device, fresh_model, publish
from tests.model_fixtures import digits, make_ref, signing_key, trained_models  # noqa: F401 (fixtures)


def _signature_bytes(ref) -> bytes:
    return base64.b64decode(ref.signature)


# name -> (stored bytes and the v2 ref pointing at them, given (model, v1 bytes, v2 bytes, key, v1 ref); refusal)
BAD_PUBLISHES = {
    "empty signature": (
        lambda m, d1, d2, k, r1: (d2, make_ref(m, "v2", d2, k, signature="")), RefusalReason.BAD_SIGNATURE,
    ),
    "signature that is not base64": (
        lambda m, d1, d2, k, r1: (d2, make_ref(m, "v2", d2, k, signature="not a signature!")), RefusalReason.BAD_SIGNATURE,
    ),
    "truncated signature": (
        lambda m, d1, d2, k, r1: (d2, make_ref(m, "v2", d2, k, signature=base64.b64encode(_signature_bytes(r1)[:32]).decode())),
        RefusalReason.BAD_SIGNATURE,
    ),
    "signature of the previous model replayed on new bytes": (
        lambda m, d1, d2, k, r1: (d2, make_ref(m, "v2", d2, k, signature=r1.signature)), RefusalReason.BAD_SIGNATURE,
    ),
    "tampered bytes with a pointer rewritten to match them (size and sha256), but no key": (
        lambda m, d1, d2, k, r1: (
            _flip(d2), make_ref(m, "v2", d2, k, sha256=integrity.sha256_hex(_flip(d2)), size=len(d2))
        ),
        RefusalReason.BAD_SIGNATURE,
    ),
    "intact bytes, pointer sha256 of something else": (
        lambda m, d1, d2, k, r1: (d2, make_ref(m, "v2", d2, k, sha256=integrity.sha256_hex(b"another file"))), RefusalReason.DIGEST_MISMATCH,
    ),
    "truncated download with the pointer's size rewritten to match": (
        lambda m, d1, d2, k, r1: (d2[:-1000], make_ref(m, "v2", d2, k, size=len(d2) - 1000)), RefusalReason.DIGEST_MISMATCH,
    ),
    "bytes appended to the file": (
        lambda m, d1, d2, k, r1: (d2 + b"\0" * 64, make_ref(m, "v2", d2, k)), RefusalReason.SIZE_MISMATCH,
    ),
    "an empty object": (
        lambda m, d1, d2, k, r1: (b"", make_ref(m, "v2", d2, k)), RefusalReason.SIZE_MISMATCH,
    ),
}


def _flip(data: bytes) -> bytes:
    changed = bytearray(data)
    changed[len(data) // 2] ^= 0x01
    return bytes(changed)


def _model_files(client) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (client.store.directory / "models").glob("*.tflite")}


@pytest.fixture
def installed(local_stack, trained_models, signing_key, tmp_path):
    """A fresh model with v1 in production, installed and active on alice's device."""
    model = fresh_model()
    data = trained_models["v1"].data
    v1 = make_ref(model, "v1", data, signing_key)
    publish(local_stack, model, production=v1, stored={"v1": data})
    client = device(local_stack, tmp_path, model, signing_key)
    assert client.check_for_update().status is UpdateStatus.UPDATED and client.active == v1
    return model, v1, client


@pytest.mark.parametrize("case", sorted(BAD_PUBLISHES))
@pytest.mark.parametrize("role", ["production", "canary"])
def test_a_model_that_is_not_what_was_signed_is_refused_and_the_previous_one_kept(
    local_stack, trained_models, signing_key, tmp_path, digits, installed, case, role,
):
    model, v1, client = installed
    make, reason = BAD_PUBLISHES[case]
    stored, bad = make(model, trained_models["v1"].data, trained_models["v2"].data, signing_key, v1)
    if role == "production":
        publish(local_stack, model, production=bad, stored={"v2": stored})
    else:  # offered to every device as a canary
        publish(local_stack, model, production=v1, candidate=bad, percent=100.0, stored={"v2": stored})

    result = client.check_for_update()
    assert result.status is UpdateStatus.REFUSED, (case, result)
    assert result.detail.startswith(reason.value), result.detail
    assert client.active == v1 and client.classify(digits[0].rgb).model_version == "v1"
    assert set(_model_files(client)) == {f"{v1.sha256}.tflite"}, "only verified files are named as models"
    assert client.check_for_update().status is UpdateStatus.REFUSED  # still refused on the next poll
    restarted = device(local_stack, tmp_path, model, signing_key)
    assert restarted.active == v1 and restarted.check_for_update().status is UpdateStatus.REFUSED


def test_a_model_signed_by_another_key_is_refused_even_with_a_consistent_pointer(
    local_stack, trained_models, signing_key, tmp_path, installed,
):
    """Someone with write access to the bucket and the pointer but not the signing key: every
    field consistent with the bytes, signed by their own key."""
    from tests.model_fixtures import SigningKey

    model, v1, client = installed
    private = integrity.generate_private_key_pem()
    theirs = SigningKey(private, integrity.public_key_pem(private))
    data = trained_models["v2"].data
    publish(local_stack, model, production=make_ref(model, "v2", data, theirs), stored={"v2": data})
    result = client.check_for_update()
    assert result.status is UpdateStatus.REFUSED and result.detail.startswith(RefusalReason.BAD_SIGNATURE.value)
    assert client.active == v1
    # The same bytes signed by the pinned key are accepted: the refusal was the key, nothing else.
    # (A fresh device: the SDK remembers refusals by the file's sha256 alone, so this device would
    # keep refusing these bytes even when re-signed correctly; reported, not pinned here.)
    publish(local_stack, model, production=make_ref(model, "v3", data, signing_key), stored={"v3": data})
    fresh = device(local_stack, tmp_path, model, signing_key, device_id="alice-tablet")
    assert fresh.check_for_update().status is UpdateStatus.UPDATED and fresh.active.version == "v3"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"production.signature": None}, r"production\.signature"),  # the field deleted
        ({"production.sha256": None}, r"production\.sha256"),
        ({"production.size": None}, r"production\.size"),
        ({"production.sha256": "A" * 64}, r"production\.sha256"),  # not lowercase hex
    ],
)
def test_a_pointer_missing_a_signature_or_digest_is_refused_before_any_download(local_stack, installed, signing_key, tmp_path, change, message):
    from google.cloud import firestore

    model, v1, client = installed
    pointer = db(local_stack).document(layout.model_doc(model))
    (field, value), = change.items()
    pointer.update({field: firestore.DELETE_FIELD if value is None else value, "production.version": "v9",
                    "production.path": layout.model_object(model, "v9")})
    received = client.transport.stats.model_bytes
    with pytest.raises(PointerError, match=message):
        client.check_for_update()
    assert client.active == v1 and client.transport.stats.model_bytes == received


@pytest.mark.parametrize("path", ["models/{other}/v1/model.tflite", "uploads/{model}/alice/x.png", "models/{model}/v1/manifest.json"])
def test_a_pointer_cannot_send_the_device_to_another_object(local_stack, installed, signing_key, trained_models, path):
    model, v1, client = installed
    data = trained_models["v2"].data
    publish(local_stack, model, production=make_ref(model, "v2", data, signing_key, path=path.format(model=model, other="digits")))
    received = client.transport.stats.model_bytes
    with pytest.raises(PointerError, match=r"production\.path"):
        client.check_for_update()
    assert client.active == v1 and client.transport.stats.model_bytes == received

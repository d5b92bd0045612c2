"""What a device uploads: hard cases plus a small sample, within daily budgets, without EXIF."""

import io
from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, strategies as st
from PIL import Image

from client_sdk.budget import CaptureBudget
from client_sdk.capture import BudgetDay, capture_reason, encode_capture
from shared.config import Client, Settings

SETTINGS = Client(capture_sample_rate=0.05, daily_capture_count=3, daily_capture_bytes=1000)


def test_the_default_threshold_is_half_and_lives_in_the_one_settings():
    assert Settings().client.capture_below_confidence == 0.5


@given(st.floats(0, 1), st.floats(0, 1, exclude_max=True))
def test_every_prediction_below_the_threshold_is_captured_and_above_it_only_the_sample(confidence, draw):
    reason = capture_reason(confidence, draw, SETTINGS)
    if confidence < 0.5:
        assert reason == "low_confidence"
    else:
        assert reason == ("sample" if draw < 0.05 else None)


def test_the_sample_of_confident_predictions_is_about_the_sample_rate():
    rng = np.random.default_rng(0)
    captured = sum(capture_reason(0.99, rng.random(), SETTINGS) is not None for _ in range(20_000))
    assert 0.04 < captured / 20_000 < 0.06


def test_the_daily_count_budget_stops_captures_and_a_new_day_resets_it():
    today = date(2026, 3, 1)
    day = BudgetDay(today.isoformat())
    for _ in range(3):
        day = day.spend(today, 10, SETTINGS)
    assert day.count == 3 and day.bytes == 30
    assert day.spend(today, 10, SETTINGS) is None
    assert day.spend(today + timedelta(days=1), 10, SETTINGS) == BudgetDay("2026-03-02", 1, 10)


def test_the_daily_byte_budget_stops_a_capture_that_would_exceed_it():
    today = date(2026, 3, 1)
    day = BudgetDay(today.isoformat()).spend(today, 900, SETTINGS)
    assert day.spend(today, 101, SETTINGS) is None
    assert day.spend(today, 100, SETTINGS).bytes == 1000


def test_the_budget_survives_a_restart_of_the_app(tmp_path):
    today = date(2026, 3, 1)
    budget = CaptureBudget(tmp_path / "budget.json", SETTINGS, today=lambda: today)
    assert [budget.try_spend(10) for _ in range(2)] == [True, True]
    restarted = CaptureBudget(tmp_path / "budget.json", SETTINGS, today=lambda: today)
    assert [restarted.try_spend(10) for _ in range(2)] == [True, False]


def _jpeg_with_exif() -> bytes:
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 30, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0131] = "firmware 1.2"  # Software
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif, comment=b"home address")
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_a_capture_carries_no_exif_or_comment_and_is_upright(fmt):
    original = _jpeg_with_exif()
    assert Image.open(io.BytesIO(original)).getexif().get(0x010F) == "SecretCam"
    encoded = encode_capture(original, Client(capture_format=fmt))
    assert b"SecretCam" not in encoded.data and b"home address" not in encoded.data and b"Exif" not in encoded.data
    clean = Image.open(io.BytesIO(encoded.data))
    assert not clean.getexif() and "exif" not in clean.info and "comment" not in clean.info
    assert clean.size == (40, 30)  # the orientation was applied before it was dropped
    assert encoded.content_type == {"png": "image/png", "jpeg": "image/jpeg"}[fmt]


def test_a_large_capture_is_downscaled_to_the_configured_side():
    big = np.zeros((2000, 1000, 3), dtype=np.uint8)
    encoded = encode_capture(big, Client(capture_max_side=256))
    assert Image.open(io.BytesIO(encoded.data)).size == (128, 256)


def test_pixels_of_the_wrong_type_are_refused_clearly():
    with pytest.raises(ValueError, match="uint8"):
        encode_capture(np.zeros((8, 8, 3), dtype=np.float32), SETTINGS)

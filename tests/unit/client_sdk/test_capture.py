"""What a device uploads: a random sample of all predictions plus the hard cases, within daily budgets
(part of them held for the random sample), each with its reason, without EXIF."""

import io
from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, strategies as st
from PIL import Image

from client_sdk.budget import CaptureBudget
from client_sdk.capture import BudgetDay, capture_reason, encode_capture
from shared.config import Client, Settings
from shared.layout import CaptureReason

SETTINGS = Client(capture_sample_rate=0.05, daily_capture_count=3, daily_capture_bytes=1000)


def test_the_default_threshold_is_half_and_lives_in_the_one_settings():
    assert Settings().client.capture_below_confidence == 0.5


@given(st.floats(0, 1), st.floats(0, 1, exclude_max=True))
def test_the_random_sample_is_drawn_first_whatever_the_confidence_and_other_hard_cases_are_low_confidence(confidence, draw):
    reason = capture_reason(confidence, draw, SETTINGS)
    if draw < 0.05:
        assert reason == "random_sample"
    else:
        assert reason == ("low_confidence" if confidence < 0.5 else None)


def test_the_reasons_are_the_layouts():
    assert {r.value for r in CaptureReason} == {"low_confidence", "random_sample", "user_report"}


@pytest.mark.parametrize("confidence", [0.1, 0.99])
def test_the_random_sample_is_about_the_sample_rate_of_every_prediction_confident_or_not(confidence):
    rng = np.random.default_rng(0)
    sampled = sum(capture_reason(confidence, rng.random(), SETTINGS) == "random_sample" for _ in range(20_000))
    assert 0.04 < sampled / 20_000 < 0.06


def test_the_random_sample_of_a_mixed_stream_has_the_streams_confidence_distribution():
    """Unbiased: the sampled confidences look like all of them, the hard cases do not."""
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(1)
    confidences = np.concatenate([rng.uniform(0.1, 0.5, 3_000), rng.uniform(0.9, 1.0, 27_000)])
    rng.shuffle(confidences)
    reasons = [capture_reason(c, rng.random(), SETTINGS) for c in confidences]
    sample = confidences[[r == "random_sample" for r in reasons]]
    hard = confidences[[r == "low_confidence" for r in reasons]]
    assert ks_2samp(sample, confidences).pvalue > 0.01
    assert ks_2samp(hard, confidences).pvalue < 1e-6


def test_the_daily_count_budget_stops_captures_and_a_new_day_resets_it():
    today = date(2026, 3, 1)
    day = BudgetDay(today.isoformat())
    for _ in range(3):
        day = day.spend(today, 10, SETTINGS, "random_sample")
    assert day.count == 3 and day.bytes == 30
    assert day.spend(today, 10, SETTINGS, "random_sample") is None
    assert day.spend(today + timedelta(days=1), 10, SETTINGS, "random_sample") == BudgetDay("2026-03-02", 1, 10, 1, 10)


def test_the_daily_byte_budget_stops_a_capture_that_would_exceed_it():
    today = date(2026, 3, 1)
    day = BudgetDay(today.isoformat()).spend(today, 900, SETTINGS, "random_sample")
    assert day.spend(today, 101, SETTINGS, "random_sample") is None
    assert day.spend(today, 100, SETTINGS, "random_sample").bytes == 1000


RESERVED = Client(daily_capture_count=10, daily_capture_bytes=1000, random_sample_reserve=3)


def test_hard_cases_cannot_use_the_captures_held_for_the_random_sample():
    today = date(2026, 3, 1)
    day = BudgetDay(today.isoformat())
    for _ in range(7):
        day = day.spend(today, 10, RESERVED, "low_confidence")
    assert day.spend(today, 10, RESERVED, "low_confidence") is None  # 3 of 10 held
    assert day.spend(today, 10, RESERVED, "user_report") is None
    for _ in range(3):
        day = day.spend(today, 10, RESERVED, "random_sample")
    assert day.count == 10 and day.sample_count == 3
    assert day.spend(today, 10, RESERVED, "random_sample") is None  # the whole budget is spent


def test_random_samples_taken_early_release_the_reserve_to_hard_cases():
    today = date(2026, 3, 1)
    day = BudgetDay(today.isoformat())
    for _ in range(3):
        day = day.spend(today, 10, RESERVED, "random_sample")
    for _ in range(7):
        day = day.spend(today, 10, RESERVED, "low_confidence")
    assert day.count == 10


def test_the_reserve_holds_the_same_share_of_the_bytes():
    today = date(2026, 3, 1)
    day = BudgetDay(today.isoformat()).spend(today, 700, RESERVED, "low_confidence")  # 300 of 1000 bytes held
    assert day.spend(today, 1, RESERVED, "low_confidence") is None
    assert day.spend(today, 300, RESERVED, "random_sample").bytes == 1000


@given(st.lists(st.tuples(st.sampled_from(["low_confidence", "random_sample", "user_report"]), st.integers(1, 200)),
                max_size=60),
       st.integers(0, 12))
def test_whatever_the_order_hard_cases_never_take_what_the_random_sample_is_owed(spends, reserve):
    settings = Client(daily_capture_count=10, daily_capture_bytes=1000, random_sample_reserve=reserve)
    today = date(2026, 3, 1)
    day = BudgetDay(today.isoformat())
    for reason, size in spends:
        day = day.spend(today, size, settings, reason) or day
        assert day.count <= 10 and day.bytes <= 1000
        owed = max(0, min(reserve, 10) - day.sample_count)
        assert day.count - day.sample_count <= 10 - min(reserve, 10)
        assert day.count + owed <= 10 or owed == 0


def test_a_budget_file_written_before_the_reserve_existed_still_loads(tmp_path):
    today = date(2026, 3, 1)
    (tmp_path / "budget.json").write_text('{"day": "2026-03-01", "count": 2, "bytes": 20}')
    budget = CaptureBudget(tmp_path / "budget.json", SETTINGS, today=lambda: today)
    assert budget.spent == BudgetDay("2026-03-01", 2, 20)
    assert budget.try_spend(10, "random_sample") and not budget.try_spend(10, "random_sample")


def test_the_budget_survives_a_restart_of_the_app(tmp_path):
    today = date(2026, 3, 1)
    budget = CaptureBudget(tmp_path / "budget.json", SETTINGS, today=lambda: today)
    assert [budget.try_spend(10, "random_sample") for _ in range(2)] == [True, True]
    restarted = CaptureBudget(tmp_path / "budget.json", SETTINGS, today=lambda: today)
    assert [restarted.try_spend(10, "random_sample") for _ in range(2)] == [True, False]


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

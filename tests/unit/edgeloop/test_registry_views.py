"""`edgeloop status` shows each version's field holdout beside production's score on the same captures."""

from edgeloop.registry_views import _field_holdout


def test_the_field_holdout_column_shows_both_scores_and_the_size_or_nothing():
    assert _field_holdout({"int8_accuracy": 0.98}) == "-"
    assert _field_holdout({"field_holdout_images": 0}) == "-"
    assert _field_holdout({"field_holdout_images": 40, "int8_field_accuracy": 0.95,
                           "production_int8_field_accuracy": 0.425}) == "0.950 vs 0.425 (40)"
    assert _field_holdout({"field_holdout_images": 12, "int8_field_accuracy": 0.9}) == "0.900 (12)"

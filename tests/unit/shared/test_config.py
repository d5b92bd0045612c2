import pytest
from pydantic import ValidationError

from shared.config import Settings


def test_defaults_describe_the_embedded_local_stack():
    settings = Settings()
    assert settings.project_id == "demo-edgeloop"
    assert settings.models == ("digits",)
    assert settings.topics.retrain_requests == "retrain-requests"
    assert settings.topics.dead_letter("retrain-requests") == "retrain-requests-dead-letter"
    assert settings.delivery.max_delivery_attempts == 5


def test_every_setting_can_be_overridden_from_the_environment(monkeypatch):
    monkeypatch.setenv("EDGELOOP_PROJECT_ID", "prod-project")
    monkeypatch.setenv("EDGELOOP_THRESHOLDS__NEW_DATA_IMAGES", "50")
    monkeypatch.setenv("EDGELOOP_PORTS__FIRESTORE", "8080")
    monkeypatch.setenv("EDGELOOP_MODELS", '["digits", "fashion"]')
    settings = Settings()
    assert settings.project_id == "prod-project"
    assert settings.thresholds.new_data_images == 50
    assert settings.ports.firestore == 8080
    assert settings.models == ("digits", "fashion")


@pytest.mark.parametrize(
    "variable, value",
    [
        ("EDGELOOP_THRESHOLDS__MIN_SUCCESS_RATE", "1.5"),
        ("EDGELOOP_THRESHOLDS__NEW_DATA_IMAGES", "0"),
        ("EDGELOOP_DELIVERY__MAX_DELIVERY_ATTEMPTS", "2"),
        ("EDGELOOP_PORTS__PUBSUB", "70000"),
    ],
)
def test_out_of_range_values_are_refused_with_the_field_named(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as error:
        Settings()
    assert variable.removeprefix("EDGELOOP_").split("__")[-1].lower() in str(error.value)

"""The CNN takes raw RGB pixels, and the grid search keeps the best trial by validation while recording all."""

import pytest

from shared.digits import LABELS
from trainer_job.model import DEFAULT_GRID, Hyperparameters, build_model, train_best

CRIPPLED = Hyperparameters(filters=2, dense_units=8, epochs=1, dropout=0.0)
QUICK = Hyperparameters(epochs=3)


@pytest.fixture(scope="module")
def search(digits):
    return train_best(digits.train, digits.validation, [CRIPPLED, QUICK], seed=0)


def test_the_model_rescales_raw_pixels_itself():
    import keras

    model = build_model(10, Hyperparameters())
    assert model.input_shape == (None, 32, 32, 3)
    assert isinstance(model.layers[0], keras.layers.Rescaling)
    assert model.output_shape == (None, 10)


def test_every_trial_is_recorded_in_grid_order_with_its_time(search):
    assert [trial.hyperparameters for trial in search.trials] == [CRIPPLED, QUICK]
    assert all(trial.seconds > 0 and 0 <= trial.val_accuracy <= 1 for trial in search.trials)
    assert search.trials[1].as_dict()["hyperparameters"]["epochs"] == 3


def test_the_best_trial_by_validation_accuracy_wins(search):
    assert search.hyperparameters == QUICK
    assert search.val_accuracy == max(trial.val_accuracy for trial in search.trials) > 0.9
    assert search.model.output_shape == (None, len(LABELS))


def test_an_empty_grid_is_refused(digits):
    with pytest.raises(ValueError, match="empty"):
        train_best(digits.train, digits.validation, [], seed=0)


def test_the_default_grid_is_small():
    assert 1 <= len(DEFAULT_GRID) <= 3 and all(hp.epochs <= 15 for hp in DEFAULT_GRID)

"""The demo's summary names what actually happened, not what the script expected."""

import re

from rich.console import Console

from edgeloop.demo import DemoResult, summary_table


def rendered(result: DemoResult) -> str:
    console = Console(width=200, record=True)
    console.print(summary_table(result))
    return console.export_text()


def record(stage: str) -> dict:
    return {"stage": stage, "metrics": {"int8_accuracy": 0.97, "int8_drifted_accuracy": 0.9}, "history": []}


def test_the_loop_close_names_the_version_that_fixed_the_drift():
    versions = {"v1": record("archived"), "v2": record("rejected"), "v3": record("production")}
    text = rendered(DemoResult([], versions, [], 61.0, 170.0, {}, None, True, fixed_by="v3"))
    assert "loop close: v3's run launched → every device on v3" in text and "61 s" in text
    assert "v2's run" not in text


def test_a_loop_that_did_not_close_says_so():
    text = rendered(DemoResult([], {"v1": record("production")}, [], None, 600.0, {}, None, False))
    assert "loop NOT closed" in text and "not closed" in text


def test_each_version_shows_its_field_holdout_beside_production_on_the_same_captures():
    v2 = {**record("production"), "metrics": {"int8_accuracy": 0.97, "int8_drifted_accuracy": 0.9, "field_holdout_images": 34,
                                              "int8_field_accuracy": 0.95, "production_int8_field_accuracy": 0.4}}
    text = rendered(DemoResult([], {"v1": record("archived"), "v2": v2}, [], 61.0, 170.0, {}, None, True, fixed_by="v2"))
    assert re.search(r"v1: int8 accuracy field holdout, vs production\s*│\s*no field holdout", text)
    assert re.search(r"v2: int8 accuracy field holdout, vs production\s*│\s*95.0% vs 40.0% \(34 images\)", text)

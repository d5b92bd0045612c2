"""The demo's summary names what actually happened, not what the script expected."""

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

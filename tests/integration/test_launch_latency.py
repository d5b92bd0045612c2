"""A run records when it was asked for and when its trainer started: what bench loop's launch latency reads."""

from rich.console import Console

from shared.config import Settings


def test_each_operator_request_starts_a_trainer_and_its_run_records_the_ask_and_the_start(local_stack):
    from edgeloop.bench_launch import request_to_start

    waits = request_to_start(Settings(), Console(quiet=True), requests=2)
    assert len(waits) == 2
    assert all(0 < wait < 30 for wait in waits), waits  # positive: the start is recorded after the ask

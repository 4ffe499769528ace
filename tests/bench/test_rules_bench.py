"""The rules benchmark runs end to end, and its two paths find the same things.

Its speed targets are judged by running it, never here: timings in a test
suite depend on whatever else the machine is doing.
"""

from __future__ import annotations

import pytest

from bench import rules as bench


def test_benchmark_runs_and_batch_agrees_with_the_loop(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bench.main(["--campaigns", "30", "--days", "20", "--sample", "10", "--repeat", "1"])

    out = capsys.readouterr().out
    assert "built 2,400 KPI rows" in out
    assert "(120 groups)" in out
    assert "batch and loop agree on the sampled campaigns: True" in out
    assert "batch / raw GROUP BY:" in out and "loop / batch:" in out

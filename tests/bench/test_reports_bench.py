"""The report benchmark runs end to end and renders what it says.

Its speed target is judged by running it, never here: timings in a test
suite depend on whatever else the machine is doing.
"""

from __future__ import annotations

import pytest

from bench import reports as bench


def test_benchmark_renders_a_four_page_report_beside_a_bare_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bench.main(["--count", "2"])

    out = capsys.readouterr().out
    assert "report: 4 pages, 3 charts, 20 insights" in out
    assert "report, median of 2:" in out
    assert "bare fpdf2 table, median:" in out
    assert "report / bare:" in out

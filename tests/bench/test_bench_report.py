"""The arithmetic under every benchmark table: percentiles, targets, tables, the engines' agreement count."""

from __future__ import annotations

import pytest

from bench.engine import Metric, agreeing_prefix
from bench.report import Target, markdown_table, percentile


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(100, 0, -1)]  # 100 … 1, unsorted on purpose
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0


@pytest.mark.parametrize("q", [0, -1, 101])
def test_percentile_refuses_a_rank_outside_0_to_100(q):
    with pytest.raises(ValueError):
        percentile([1.0, 2.0], q)


def test_targets_compare_in_the_direction_they_state():
    assert Target("<=", 5, " ms").met(5) and not Target("<=", 5, " ms").met(5.01)
    assert Target(">=", 200).met(200) and not Target(">=", 200).met(199.9)
    assert Target("==", 0).met(0) and not Target("==", 0).met(1)
    assert str(Target("<=", 0.5, " s")) == "≤ 0.5 s"


def test_markdown_table_has_a_header_a_rule_and_one_line_per_row():
    lines = markdown_table(["a", "b"], [["1", "2"], ["3", "4"]]).splitlines()
    assert lines == ["| a | b |", "|---|---|", "| 1 | 2 |", "| 3 | 4 |"]


def test_a_metric_is_met_only_when_both_its_bound_and_its_ratio_are():
    fast_enough_but_not_faster = Metric("latency", "ms", 4, 10, Target("<=", 5), 3)
    faster_but_too_slow = Metric("latency", "ms", 6, 60, Target("<=", 5), 3)
    both = Metric("latency", "ms", 4, 40, Target("<=", 5), 3)
    assert fast_enough_but_not_faster.row()[-1] == "**no**"
    assert faster_but_too_slow.row()[-1] == "**no**"
    assert both.row()[-1] == "yes"
    assert both.row()[3] == "10×"


def test_engines_are_compared_up_to_our_first_eos():
    eos = 0
    assert agreeing_prefix([5, 6, 0, 7], [5, 6, 9, 9], eos) == 2  # parted at EOS, by design
    assert agreeing_prefix([5, 6, 7], [5, 8, 7], eos) == 1  # parted before EOS: a real disagreement
    assert agreeing_prefix([5, 6, 7], [5, 6, 7], eos) == 3

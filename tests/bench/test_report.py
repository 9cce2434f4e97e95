"""What every benchmark's report shares: ratios of figures that may be missing, "n/a" for
them, a target's verdict, and tables whose columns line up."""

from __future__ import annotations

from bench._report import fmt, met, ratio, table


def test_a_ratio_needs_both_figures_and_a_denominator_above_zero():
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(-40.0, 80.0) == -0.5  # a proxy faster than direct: the caller decides
    assert ratio(None, 2.0) is None
    assert ratio(3.0, None) is None
    assert ratio(3.0, 0.0) is None
    assert ratio(3.0, -1.0) is None


def test_missing_figures_read_n_a_and_scaled_ones_keep_their_format():
    assert fmt(None, ".2f") == "n/a"
    assert fmt(4_512_345.0, ".2f", 1e6) == "4.51"
    assert fmt(0.0123, ".1f", 1e-3) == "12.3"
    assert fmt(1234.5, ",.0f") == "1,234"


def test_a_target_is_met_not_met_or_undetermined():
    assert [met(True), met(False), met(None)] == ["met", "NOT met", "undetermined"]


def test_labels_align_left_figures_right_under_a_dashed_header():
    lines = table([("what", "mode", "TPS"), ("native", "fork", "4.51"), ("py", "-", "1,000")], 2)
    assert lines == [
        "what    mode    TPS",
        "------  ----  -----",
        "native  fork   4.51",
        "py      -     1,000",
    ]

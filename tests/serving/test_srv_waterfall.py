"""The server-side waterfall geometry adds up and stays inside the drawing."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from serving.waterfall import waterfall_bars

contribs = st.lists(st.tuples(st.text(min_size=1, max_size=8), st.floats(-200, 200, allow_nan=False)), max_size=12)


@given(st.floats(0, 1000, allow_nan=False), contribs)
def test_waterfall_ends_at_the_score_and_fits(base, contributions):
    bars, height = waterfall_bars(base, contributions, "base", "score", width=560.0)
    assert bars[0].kind == "base" and bars[-1].kind == "total"
    assert abs(bars[-1].value - (base + sum(v for _, v in contributions))) < 1e-6
    assert all(b.x >= 170.0 - 1e-6 and b.x + b.width <= 560.0 - 50.0 + 1.0 + 1e-6 for b in bars)
    assert height >= bars[-1].y + 16
    for prev, bar in pairwise(bars[1:-1]):
        assert abs(prev.end - bar.start) < 1e-9  # each step starts where the previous ended


@given(st.text(alphabet=st.sampled_from("信用修复 abcdefghij,"), min_size=1, max_size=60))
def test_wrapped_labels_keep_every_character_and_fit(label):
    from serving.waterfall import _width, wrap_label

    lines = wrap_label(label, 160.0)
    assert "".join(lines).replace(" ", "") == label.replace(" ", "")
    assert all(_width(line) <= 160.0 or len(line) == 1 for line in lines)

"""The RFM naming rule table covers exactly the eleven segment names of the contract."""

from __future__ import annotations

from service.vocabulary import SEGMENTS, segment_name


def test_rule_table_names_are_the_eleven_segments():
    names = {segment_name(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert names == set(SEGMENTS)
    assert len(SEGMENTS) == 11


def test_classic_corners():
    assert segment_name(5, 5) == "Champions"
    assert segment_name(1, 1) == "Lost"
    assert segment_name(1, 5) == "Can't Lose Them"
    assert segment_name(5, 1) == "New Customers"

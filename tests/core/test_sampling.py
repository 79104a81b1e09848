"""One stable-sampling hash (core.sampling): the buckets of the widget and of lifecycle rules are the ones
they had before it, so nobody already in or out of a sample is re-sampled."""

from __future__ import annotations

import pytest

from survey_service.core import sampling
from survey_service.services import triggers
from survey_service.widget import eligibility

# (scope id, person id) -> bucket, as the two former implementations computed them.
WIDGET_BUCKETS = {(1, 1): 52, (1, 2): 40, (3, 17): 0, (42, 1000): 48, (7, 123456): 61}
RULE_BUCKETS = {(1, 1): 24, (1, 2): 81, (3, 17): 81, (42, 1000): 10, (7, 123456): 8}


@pytest.mark.parametrize("ids", list(WIDGET_BUCKETS))
def test_buckets_of_both_callers_are_unchanged(ids: tuple[int, int]) -> None:
    scope, person = ids
    assert sampling.bucket(f"{scope}:{person}", digest_bytes=4) == WIDGET_BUCKETS[ids]
    assert sampling.bucket(f"rule:{scope}:person:{person}") == RULE_BUCKETS[ids]
    for percent in (0, 1, 30, 50, 99, 100):
        assert eligibility.in_sample(scope, person, percent) is (WIDGET_BUCKETS[ids] < percent)
        assert triggers.in_sample(scope, person, percent) is (RULE_BUCKETS[ids] < percent)


def test_a_bigger_sample_only_adds_people() -> None:
    for person in range(500):
        member = [sampling.in_sample(f"p{person}", percent) for percent in range(-5, 106)]
        assert member == sorted(member)  # False … False True … True
        assert not member[0] and member[-1]

"""The shared poller returns once its condition holds and otherwise fails naming it."""

from __future__ import annotations

import pytest

from tests.polling import ConditionTimeoutError, wait_for


def test_returns_once_the_predicate_holds() -> None:
    calls: list[int] = []

    def third_call() -> bool:
        calls.append(1)
        return len(calls) >= 3

    wait_for(third_call, timeout=30, step=0)
    assert len(calls) == 3


def test_fails_naming_the_condition_and_its_detail() -> None:
    with pytest.raises(ConditionTimeoutError) as failure:
        wait_for(lambda: False, timeout=0, what="the moon", detail=lambda: "log tail here")
    assert str(failure.value) == "the moon not met within 0 s\nlog tail here"


def test_a_failure_is_an_assertion_error() -> None:
    with pytest.raises(AssertionError, match="condition not met"):
        wait_for(lambda: None, timeout=0)


def test_exceptions_of_the_predicate_propagate() -> None:
    def broken() -> bool:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        wait_for(broken, timeout=30)

"""``flag``: one yes/no reading for the environment (application) and Flask config (web)."""

from __future__ import annotations

import pytest

from application import settings as application_settings
from web import settings as web_settings

# Every word either of the two former definitions took as yes: the application's
# (1, y, yes, t, true, on) and the web's (1, true, yes, on).
YES = ["1", "y", "yes", "t", "true", "on", "TRUE", "Yes", " on ", "Y", "T"]
NO = ["0", "n", "no", "f", "false", "off", "2", "enabled", "nope"]


def test_web_uses_the_application_definition() -> None:
    assert web_settings.flag is application_settings.flag


@pytest.mark.parametrize("word", YES)
def test_every_yes_word_of_either_former_definition_is_yes(word: str) -> None:
    assert application_settings.flag(word) is True
    assert application_settings.flag(word, default=False) is True


@pytest.mark.parametrize("word", NO)
def test_other_words_are_no_whatever_the_default(word: str) -> None:
    assert application_settings.flag(word) is False
    assert application_settings.flag(word, default=True) is False


@pytest.mark.parametrize("value", [None, "", "   "])
def test_unset_or_blank_is_the_default(value: str | None) -> None:
    assert application_settings.flag(value) is False
    assert application_settings.flag(value, default=True) is True


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), (False, False), (1, True), (0, False)]
)
def test_a_config_value_that_is_not_a_string_is_its_truth_value(
    value: object, expected: bool
) -> None:
    assert application_settings.flag(value) is expected
    assert application_settings.flag(value, default=not expected) is expected

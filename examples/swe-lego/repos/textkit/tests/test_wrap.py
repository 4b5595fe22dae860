import pytest

from textkit import truncate, wrap


def test_wrap_greedy():
    assert wrap("the quick brown fox jumps", 10) == ["the quick", "brown fox", "jumps"]


def test_wrap_exact_width():
    assert wrap("ab cd", 5) == ["ab cd"]
    assert wrap("ab cd", 4) == ["ab", "cd"]


def test_wrap_long_word():
    assert wrap("a supercalifragilistic word", 6) == ["a", "supercalifragilistic", "word"]


def test_wrap_bad_width():
    with pytest.raises(ValueError):
        wrap("x", 0)


def test_truncate_short_text_unchanged():
    assert truncate("short", 10) == "short"
    assert truncate("exactly10!", 10) == "exactly10!"


def test_truncate_tiny_limit():
    assert truncate("abcdef", 2) == ".."

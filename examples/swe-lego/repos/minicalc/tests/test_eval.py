import pytest

from minicalc import CalcError, evaluate


def test_precedence():
    assert evaluate("2 + 3 * 4") == 14
    assert evaluate("(2 + 3) * 4") == 20
    assert evaluate("10 - 4 - 3") == 3
    assert evaluate("7 % 4 + 1") == 4


def test_division():
    assert evaluate("12 / 4 / 3") == 1
    with pytest.raises(CalcError):
        evaluate("1 / 0")
    with pytest.raises(CalcError):
        evaluate("5 % 0")


def test_power_right_assoc():
    assert evaluate("2 ^ 3 ^ 2") == 512
    assert evaluate("2 * 3 ^ 2") == 18


def test_variables():
    assert evaluate("x * y + 1", {"x": 3, "y": 4}) == 13
    with pytest.raises(CalcError):
        evaluate("x + 1")


def test_functions():
    assert evaluate("max(1, 2) + min(5, 3)") == 5
    assert evaluate("max(2 * 3, 4)") == 6
    assert evaluate("abs(2 - 10)") == 8


def test_unbalanced():
    with pytest.raises(SyntaxError):
        evaluate("(1 + 2")
    with pytest.raises(SyntaxError):
        evaluate("1 + 2)")


def test_malformed():
    with pytest.raises(CalcError):
        evaluate("1 +")
    with pytest.raises(CalcError):
        evaluate("1 2")

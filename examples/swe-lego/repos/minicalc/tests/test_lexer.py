import pytest

from minicalc import tokenize


def kinds(src):
    return [t.kind for t in tokenize(src)]


def test_tokenize_numbers_and_ops():
    toks = tokenize("12 + 3.5*x")
    assert [t.text for t in toks] == ["12", "+", "3.5", "*", "x"]
    assert kinds("12 + 3.5*x") == ["num", "op", "num", "op", "name"]


def test_tokenize_positions():
    assert [t.pos for t in tokenize("a +  b")] == [0, 2, 5]


def test_tokenize_functions():
    assert kinds("max(1, 2)") == ["name", "lparen", "num", "comma", "num", "rparen"]


def test_tokenize_errors():
    with pytest.raises(SyntaxError):
        tokenize("1 $ 2")
    with pytest.raises(SyntaxError):
        tokenize("1.2.3")

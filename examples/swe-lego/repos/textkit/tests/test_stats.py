from textkit import char_histogram, is_palindrome, word_counts


def test_word_counts():
    assert word_counts("The cat and the hat.") == {"the": 2, "cat": 1, "and": 1, "hat": 1}


def test_word_counts_case_sensitive():
    assert word_counts("A a A", ignore_case=False) == {"A": 2, "a": 1}


def test_char_histogram_order():
    assert char_histogram("banana") == [("a", 3), ("n", 2), ("b", 1)]


def test_char_histogram_top():
    assert char_histogram("aabbbc d", top=2) == [("b", 3), ("a", 2)]


def test_palindrome():
    assert is_palindrome("A man, a plan, a canal: Panama")
    assert is_palindrome("")
    assert not is_palindrome("abca")
    assert not is_palindrome("ab")

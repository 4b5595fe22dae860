"""Counting things in text."""


def word_counts(text, ignore_case=True):
    """Occurrences of each word, punctuation stripped."""
    counts = {}
    for raw in text.split():
        word = raw.strip(".,;:!?\"'()[]")
        if not word:
            continue
        if ignore_case:
            word = word.lower()
        counts[word] = counts.get(word, 0) + 1
    return counts


def char_histogram(text, top=None):
    """(char, count) pairs, most frequent first, ties by character."""
    counts = {}
    for c in text:
        if not c.isspace():
            counts[c] = counts.get(c, 0) + 1
    pairs = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if top is not None:
        pairs = pairs[:top]
    return pairs


def is_palindrome(text):
    """True when the letters and digits read the same both ways."""
    chars = [c.lower() for c in text if c.isalnum()]
    i, j = 0, len(chars) - 1
    while i < j:
        if chars[i] != chars[j]:
            return False
        i += 1
        j -= 1
    return True

"""Conversions between identifier styles."""

SMALL_WORDS = {"a", "an", "and", "of", "the", "in", "on", "or", "to"}


def camel_to_snake(name):
    """fooBarBaz -> foo_bar_baz; HTTPServer -> http_server."""
    out = []
    for i, c in enumerate(name):
        if c.isupper():
            prev_lower = i > 0 and name[i - 1].islower()
            next_lower = i + 1 < len(name) and name[i + 1].islower()
            if i > 0 and (prev_lower or (next_lower and name[i - 1] != "_")):
                out.append("_")
            out.append(c.lower())
        else:
            out.append(c)
    return "".join(out)


def snake_to_camel(name, upper_first=False):
    """foo_bar_baz -> fooBarBaz (FooBarBaz with upper_first)."""
    parts = [p for p in name.split("_") if p]
    if not parts:
        return ""
    head = parts[0].capitalize() if upper_first else parts[0].lower()
    return head + "".join(p.capitalize() for p in parts[1:])


def title_case(text):
    """Capitalize words, keeping small words lower case unless first or last."""
    words = text.split()
    out = []
    for i, w in enumerate(words):
        if 0 < i < len(words) - 1 and w.lower() in SMALL_WORDS:
            out.append(w.lower())
        else:
            out.append(w[:1].upper() + w[1:].lower())
    return " ".join(out)

"""URL slugs."""

import unicodedata


def slugify(text, sep="-", max_length=None):
    """Lower-case ASCII words joined by sep: "Hello, World!" -> "hello-world"."""
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words, cur = [], []
    for c in norm.lower():
        if c.isalnum():
            cur.append(c)
        elif cur:
            words.append("".join(cur))
            cur = []
    if cur:
        words.append("".join(cur))
    slug = sep.join(words)
    if max_length is not None and len(slug) > max_length:
        slug = slug[:max_length].rstrip(sep)
    return slug

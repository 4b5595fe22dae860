"""Line wrapping and truncation."""


def wrap(text, width):
    """Greedy word wrap; a word longer than width gets a line of its own."""
    if width <= 0:
        raise ValueError("width must be positive")
    lines, cur = [], ""
    for word in text.split():
        if not cur:
            cur = word
        elif len(cur) + 1 + len(word) <= width:
            cur = cur + " " + word
        else:
            lines.append(cur)
            cur = word
    if cur:
        lines.append(cur)
    return lines


def truncate(text, limit, ellipsis="..."):
    """Shorten text to at most limit characters, ending with ellipsis."""
    if len(text) <= limit:
        return text
    keep = limit - len(ellipsis)
    if keep <= 0:
        return ellipsis[:limit]
    return text[:keep - 1] + ellipsis

"""textkit: small text utilities."""

from .case import camel_to_snake, snake_to_camel, title_case
from .slug import slugify
from .wrap import truncate, wrap
from .stats import char_histogram, is_palindrome, word_counts

__all__ = ["camel_to_snake", "snake_to_camel", "title_case", "slugify", "truncate", "wrap",
           "char_histogram", "is_palindrome", "word_counts"]

"""minicalc: a small arithmetic expression evaluator."""

from .lexer import Token, tokenize
from .parser import to_rpn
from .evaluator import CalcError, evaluate

__all__ = ["Token", "tokenize", "to_rpn", "CalcError", "evaluate"]

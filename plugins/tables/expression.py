"""A small, safe expression language over a record's columns (no ``eval``).

``tips > 0.2 * fare``, ``(a + b) / 2``, ``payment_type == "Cash" and fare >= 10``, ``not x``.
Grammar, loosest first::

    or      and ('or' and)*
    and     not ('and' not)*
    not     'not' not | compare
    compare sum (('<' | '<=' | '>' | '>=' | '==' | '!=') sum)?
    sum     term (('+' | '-') term)*
    term    unary (('*' | '/' | '%') unary)*
    unary   '-' unary | atom
    atom    NUMBER | "text" | 'text' | NAME | '(' or ')'

Names are column names (letters, digits, ``_``, not starting with a digit). A missing value
(the column absent, ``None`` or an empty cell) makes the whole result missing (``MISSING``):
the caller decides what a missing result becomes. Arithmetic on text, or a division by zero,
is an ``ExpressionError`` with the column values that caused it.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["MISSING", "Expression", "ExpressionError", "parse"]

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<string>\"[^\"]*\"|'[^']*')"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><=|>=|==|!=|[-+*/%<>()]))"
)
_KEYWORDS = {"and", "or", "not"}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,
}


class _Missing:
    """The result of an expression that reads a missing value."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class ExpressionError(ValueError):
    """A malformed expression (with the position) or a value it cannot compute on."""


Node = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Expression:
    """A parsed expression: ``evaluate(record)`` and the ``columns`` it reads."""

    text: str
    columns: tuple[str, ...]
    node: Node
    boolean: bool = False

    def evaluate(self, record: dict[str, Any]) -> Any:
        """The value of the expression on ``record`` (``MISSING`` when an operand is missing)."""
        return self.node(record)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Beam pickles stages; closures do not pickle, the text does.
        return parse, (self.text,)


def parse(text: str) -> Expression:
    """Parse ``text``; raise ``ExpressionError`` naming the position of the first problem."""
    tokens = _tokens(text)
    parser = _Parser(text, tokens)
    node = parser.or_()
    if parser.pos < len(tokens):
        kind, value, at = tokens[parser.pos]
        raise ExpressionError(f"{text!r}: unexpected {value!r} at character {at + 1}")
    boolean = bool(getattr(node, "boolean", False))
    return Expression(text, tuple(dict.fromkeys(parser.columns)), node, boolean)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            at = len(text) - len(text[pos:].lstrip())
            raise ExpressionError(f"{text!r}: unexpected {text[at]!r} at character {at + 1}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        start = match.start(kind)
        if kind == "name" and value in _KEYWORDS:
            kind = "keyword"
        out.append((kind, value, start))
        pos = match.end()
    if not out:
        raise ExpressionError("empty expression")
    return out


def _is_missing(value: Any) -> bool:
    return value is None or value is MISSING or (isinstance(value, str) and not value.strip())


def _number(value: Any, what: str) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ExpressionError(f"{what}: {value!r} is not a number")


class _Parser:
    """Recursive descent over the tokens; each method returns a node (a function of a record)."""

    def __init__(self, text: str, tokens: list[tuple[str, str, int]]) -> None:
        self.text, self.tokens, self.pos = text, tokens, 0
        self.columns: list[str] = []

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self, *values: str) -> str | None:
        token = self._peek()
        if token and token[0] in ("op", "keyword") and token[1] in values:
            self.pos += 1
            return token[1]
        return None

    def or_(self) -> Node:
        node = self.and_()
        while self._take("or"):
            node = _logic(node, self.and_(), any)
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self._take("and"):
            node = _logic(node, self.not_(), all)
        return node

    def not_(self) -> Node:
        if self._take("not"):
            inner = self.not_()

            def negate(record: dict[str, Any]) -> Any:
                value = inner(record)
                return MISSING if value is MISSING else not value

            negate.boolean = True  # type: ignore[attr-defined]
            return negate
        return self.compare()

    def compare(self) -> Node:
        left = self.sum()
        op = self._take(*_COMPARE)
        if not op:
            return left
        node = _binary(left, self.sum(), _COMPARE[op], op, numeric=False)
        node.boolean = True  # type: ignore[attr-defined]
        return node

    def sum(self) -> Node:
        node = self.term()
        while op := self._take("+", "-"):
            node = _binary(node, self.term(), _ARITHMETIC[op], op, numeric=True)
        return node

    def term(self) -> Node:
        node = self.unary()
        while op := self._take("*", "/", "%"):
            node = _binary(node, self.unary(), _ARITHMETIC[op], op, numeric=True)
        return node

    def unary(self) -> Node:
        if self._take("-"):
            inner = self.unary()

            def minus(record: dict[str, Any]) -> Any:
                value = inner(record)
                return MISSING if _is_missing(value) else -_number(value, "'-'")

            return minus
        return self.atom()

    def atom(self) -> Node:
        token = self._peek()
        if token is None:
            raise ExpressionError(f"{self.text!r}: ends where a value is expected")
        kind, value, at = token
        self.pos += 1
        if kind == "number":
            number = float(value) if any(c in value for c in ".eE") else int(value)
            return lambda record: number
        if kind == "string":
            literal = value[1:-1]
            return lambda record: literal
        if kind == "name":
            self.columns.append(value)
            return lambda record: record.get(value)
        if value == "(":
            node = self.or_()
            if not self._take(")"):
                raise ExpressionError(f"{self.text!r}: '(' at character {at + 1} is not closed")
            return node
        raise ExpressionError(f"{self.text!r}: unexpected {value!r} at character {at + 1}")


def _binary(left: Node, right: Node, fn: Callable[[Any, Any], Any], op: str, numeric: bool) -> Node:
    def apply(record: dict[str, Any]) -> Any:
        a, b = left(record), right(record)
        if _is_missing(a) or _is_missing(b):
            return MISSING
        if numeric or not (isinstance(a, str) and isinstance(b, str)):
            if isinstance(a, str) != isinstance(b, str) or numeric:
                a, b = _number(a, f"'{op}'"), _number(b, f"'{op}'")
        try:
            return fn(a, b)
        except ZeroDivisionError:
            raise ExpressionError(f"'{op}': division by zero ({a!r} {op} {b!r})") from None

    return apply


def _logic(left: Node, right: Node, combine: Callable[[Any], bool]) -> Node:
    def apply(record: dict[str, Any]) -> Any:
        a, b = left(record), right(record)
        if a is MISSING or b is MISSING:
            return MISSING
        return combine((bool(a), bool(b)))

    apply.boolean = True  # type: ignore[attr-defined]
    return apply

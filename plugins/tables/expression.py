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

__all__ = ["MISSING", "Expression", "ExpressionError", "Unvectorised", "parse"]

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


class Unvectorised(Exception):
    """``Expression.evaluate_columns`` cannot give what ``evaluate`` gives row by row."""


_EXACT = 2.0**53  # integers up to here are exact in float64


@dataclass
class _Vector:
    """A node's value on every row: float64 ``values``, ``missing`` (``MISSING``), ``none``
    (a bare column's missing value, which logic reads as false), ``integer`` (Python ints)."""

    values: Any
    missing: Any
    none: Any
    integer: bool


def _vector_column(name: str) -> Callable[[dict[str, Any], int], _Vector]:
    def vector(columns: dict[str, Any], rows: int) -> _Vector:
        import numpy as np
        import pyarrow as pa

        column = columns.get(name)
        if column is None:
            nothing = np.ones(rows, bool)
            return _Vector(np.zeros(rows), np.zeros(rows, bool), nothing, True)
        if column.type not in (pa.int64(), pa.float64()):
            raise Unvectorised(f"column '{name}' is not numeric")
        none = column.is_null().to_numpy(zero_copy_only=False)
        values = column.fill_null(0).to_numpy(zero_copy_only=False).astype(np.float64)
        integer = column.type == pa.int64()
        if integer and rows and np.abs(values).max() >= _EXACT:
            raise Unvectorised(f"column '{name}' holds integers beyond 2**53")
        return _Vector(values, np.zeros(rows, bool), none, integer)

    return vector


def _vector_constant(value: Any) -> Callable[[dict[str, Any], int], _Vector]:
    def vector(columns: dict[str, Any], rows: int) -> _Vector:
        import numpy as np

        if isinstance(value, str) or (isinstance(value, int) and abs(value) >= _EXACT):
            raise Unvectorised(f"the constant {value!r}")
        nothing = np.zeros(rows, bool)
        return _Vector(np.full(rows, float(value)), nothing, nothing, isinstance(value, int))

    return vector


def _vector_binary(left: Node, right: Node, op: str) -> Callable[[dict[str, Any], int], _Vector]:
    def vector(columns: dict[str, Any], rows: int) -> _Vector:
        import numpy as np

        a = left.vector(columns, rows)  # type: ignore[attr-defined]
        b = right.vector(columns, rows)  # type: ignore[attr-defined]
        missing = a.missing | a.none | b.missing | b.none
        x, y = a.values, b.values
        if op in ("/", "%") and ((y == 0) & ~missing).any():
            raise Unvectorised("a division by zero")
        with np.errstate(all="ignore"):
            if op in _COMPARE:
                values = _COMPARE[op](x, y).astype(np.float64)
            elif op == "/":
                values = x / np.where(missing, 1.0, y)
            elif op == "%":
                values = np.mod(x, np.where(missing, 1.0, y))
            else:
                values = _ARITHMETIC[op](x, y)
        integer = op not in _COMPARE and op != "/" and a.integer and b.integer
        if integer and (np.abs(values[~missing]) >= _EXACT).any():
            raise Unvectorised("an integer result beyond 2**53")
        return _Vector(values, missing, np.zeros(rows, bool), integer or op in _COMPARE)

    return vector


def _truth(v: _Vector) -> Any:
    return (v.values != 0) & ~v.none  # bool(None) is False


def _vector_logic(left: Node, right: Node, both: bool) -> Callable[[dict[str, Any], int], _Vector]:
    def vector(columns: dict[str, Any], rows: int) -> _Vector:
        import numpy as np

        a = left.vector(columns, rows)  # type: ignore[attr-defined]
        b = right.vector(columns, rows)  # type: ignore[attr-defined]
        truth = (_truth(a) & _truth(b)) if both else (_truth(a) | _truth(b))
        return _Vector(truth.astype(np.float64), a.missing | b.missing, np.zeros(rows, bool),
                       True)  # fmt: skip

    return vector


def _vector_not(inner: Node) -> Callable[[dict[str, Any], int], _Vector]:
    def vector(columns: dict[str, Any], rows: int) -> _Vector:
        import numpy as np

        a = inner.vector(columns, rows)  # type: ignore[attr-defined]
        return _Vector((~_truth(a)).astype(np.float64), a.missing, np.zeros(rows, bool), True)

    return vector


def _vector_minus(inner: Node) -> Callable[[dict[str, Any], int], _Vector]:
    def vector(columns: dict[str, Any], rows: int) -> _Vector:
        import numpy as np

        a = inner.vector(columns, rows)  # type: ignore[attr-defined]
        return _Vector(-a.values, a.missing | a.none, np.zeros(rows, bool), a.integer)

    return vector


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

    def evaluate_columns(self, columns: dict[str, Any], rows: int) -> tuple[Any, Any]:
        """The values on ``rows`` rows of numeric columns (``columns``: name -> Arrow array of
        int64 or float64, null = missing) as numpy arrays ``(values, missing)``: float64 values
        (0/1 for a truth value), True where ``evaluate`` gives ``MISSING``. Raises
        ``Unvectorised`` where ``evaluate`` must decide a row at a time (text, a division by
        zero, an integer result beyond 2**53, a bare missing column)."""
        out = self.node.vector(columns, rows)  # type: ignore[attr-defined]
        if (out.none & ~out.missing).any():
            raise Unvectorised("a missing value outside any operation")
        return out.values, out.missing

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
            right = self.and_()
            node = _with(_logic(node, right, any), _vector_logic(node, right, False))
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self._take("and"):
            right = self.not_()
            node = _with(_logic(node, right, all), _vector_logic(node, right, True))
        return node

    def not_(self) -> Node:
        if self._take("not"):
            inner = self.not_()

            def negate(record: dict[str, Any]) -> Any:
                value = inner(record)
                return MISSING if value is MISSING else not value

            negate.boolean = True  # type: ignore[attr-defined]
            return _with(negate, _vector_not(inner))
        return self.compare()

    def compare(self) -> Node:
        left = self.sum()
        op = self._take(*_COMPARE)
        if not op:
            return left
        right = self.sum()
        node = _with(_binary(left, right, _COMPARE[op], op, numeric=False),
                     _vector_binary(left, right, op))  # fmt: skip
        node.boolean = True  # type: ignore[attr-defined]
        return node

    def sum(self) -> Node:
        node = self.term()
        while op := self._take("+", "-"):
            right = self.term()
            node = _with(_binary(node, right, _ARITHMETIC[op], op, numeric=True),
                         _vector_binary(node, right, op))  # fmt: skip
        return node

    def term(self) -> Node:
        node = self.unary()
        while op := self._take("*", "/", "%"):
            right = self.unary()
            node = _with(_binary(node, right, _ARITHMETIC[op], op, numeric=True),
                         _vector_binary(node, right, op))  # fmt: skip
        return node

    def unary(self) -> Node:
        if self._take("-"):
            inner = self.unary()

            def minus(record: dict[str, Any]) -> Any:
                value = inner(record)
                return MISSING if _is_missing(value) else -_number(value, "'-'")

            return _with(minus, _vector_minus(inner))
        return self.atom()

    def atom(self) -> Node:
        token = self._peek()
        if token is None:
            raise ExpressionError(f"{self.text!r}: ends where a value is expected")
        kind, value, at = token
        self.pos += 1
        if kind == "number":
            number = float(value) if any(c in value for c in ".eE") else int(value)
            return _with(lambda record: number, _vector_constant(number))
        if kind == "string":
            literal = value[1:-1]
            return _with(lambda record: literal, _vector_constant(literal))
        if kind == "name":
            self.columns.append(value)
            return _with(lambda record: record.get(value), _vector_column(value))
        if value == "(":
            node = self.or_()
            if not self._take(")"):
                raise ExpressionError(f"{self.text!r}: '(' at character {at + 1} is not closed")
            return node
        raise ExpressionError(f"{self.text!r}: unexpected {value!r} at character {at + 1}")


def _with(node: Node, vector: Callable[[dict[str, Any], int], _Vector]) -> Node:
    node.vector = vector  # type: ignore[attr-defined]
    return node


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

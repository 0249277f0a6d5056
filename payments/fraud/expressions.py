"""The fraud analysts' rule language: small, safe, checked against the known features.

An expression reads like a Python condition over the features of one payment attempt
(``payments.fraud.features.FEATURES``)::

    amount > 500000 and card_country not in ["SE", "NO"]
    card_failures_1h >= 3 or (new_card and amount_zscore > 3.5)

Python's own parser (``ast.parse`` in "eval" mode) reads the text; nothing of Python is
run. The tree is accepted only when every node is of a whitelisted kind (names,
literals, ``and or not``, comparisons, ``in``/``not in`` a list of literals, ``+ - * /``
and unary minus on numbers), every name is a known feature and every operator gets the
kinds it takes (number, text, bool). Anything else — attribute access, calls, subscripts,
lambdas, comprehensions, ``**``, f-strings — is refused with the position. The checked
tree is then turned into nested closures (``compile_expression``), so evaluating a rule
costs a few function calls, never a parse.

Size limits keep the work bounded: at most ``MAX_LENGTH`` characters, ``MAX_NODES``
nodes and ``MAX_DEPTH`` levels of nesting, list literals of at most ``MAX_LIST`` items.

Evaluation over missing values: a feature may be unknown for an attempt (``None``: no
country for a card outside the BIN table). A comparison with an unknown side is false,
arithmetic with one is unknown, and a division by zero is unknown: a rule never matches
on what is not known, and never fails the payment.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

NUMBER = "number"
TEXT = "text"
BOOL = "bool"
KINDS = (NUMBER, TEXT, BOOL)

MAX_LENGTH = 1000
MAX_NODES = 200
MAX_DEPTH = 20
MAX_LIST = 100
MAX_NUMBER = 10**15  # larger than any amount in minor units; refuses huge literals

Evaluator = Callable[[Mapping[str, Any]], Any]


class ExpressionError(ValueError):
    """A rule the language refuses: the message names the position (1-based column) and
    the cause (an unknown feature, an operator and the kinds it got, a forbidden form)."""

    def __init__(self, message: str, *, column: int | None = None) -> None:
        self.column = column
        if column is not None:
            message = _("at column %(column)s: %(message)s") % {
                "column": column,
                "message": message,
            }
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class CompiledExpression:
    """A checked expression: its text, the features it reads and its evaluator."""

    text: str
    features: frozenset[str]
    evaluate: Evaluator

    def matches(self, values: Mapping[str, Any]) -> bool:
        """True only when the expression is true (an unknown result does not match)."""
        return self.evaluate(values) is True


_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_SYMBOL = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
}


def _divide(left: Any, right: Any) -> Any:
    return None if right == 0 else left / right


_ARITHMETIC: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: _divide,
}


def _column(node: ast.AST) -> int:
    return getattr(node, "col_offset", 0) + 1


def _kind_of_literal(value: Any) -> str | None:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, str):
        return TEXT
    return None


class _Checker:
    """Walks the parsed tree once: whitelist, names, kinds, limits; returns closures."""

    def __init__(self, kinds: Mapping[str, str]) -> None:
        self.kinds = kinds
        self.nodes = 0
        self.used: set[str] = set()

    def build(self, node: ast.AST, depth: int = 0) -> tuple[str, Evaluator]:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError(
                _("the rule is too long (more than %(most)s parts)") % {"most": MAX_NODES},
                column=_column(node),
            )
        if depth > MAX_DEPTH:
            raise ExpressionError(
                _("the rule is nested too deeply (more than %(most)s levels)")
                % {"most": MAX_DEPTH},
                column=_column(node),
            )
        handler = getattr(self, "_" + type(node).__name__, None)
        if handler is None:
            raise ExpressionError(
                _("%(form)s is not allowed in a rule") % {"form": _describe(node)},
                column=_column(node),
            )
        result: tuple[str, Evaluator] = handler(node, depth + 1)
        return result

    def _Name(self, node: ast.Name, depth: int) -> tuple[str, Evaluator]:
        name = node.id
        if name in ("true", "false"):
            value = name == "true"
            return BOOL, lambda values: value
        kind = self.kinds.get(name)
        if kind is None:
            raise ExpressionError(
                _("unknown feature %(name)s") % {"name": repr(name)}, column=_column(node)
            )
        self.used.add(name)
        return kind, lambda values: values.get(name)

    def _Constant(self, node: ast.Constant, depth: int) -> tuple[str, Evaluator]:
        value = node.value
        kind = _kind_of_literal(value)
        if kind is None:
            raise ExpressionError(
                _("%(value)s is not a number, text or true/false") % {"value": repr(value)},
                column=_column(node),
            )
        if isinstance(value, int | float) and (not math.isfinite(value) or abs(value) > MAX_NUMBER):
            raise ExpressionError(_("the number is too large"), column=_column(node))
        return kind, lambda values: value

    def _BoolOp(self, node: ast.BoolOp, depth: int) -> tuple[str, Evaluator]:
        parts = [self._expect(value, BOOL, depth, "and/or") for value in node.values]
        if isinstance(node.op, ast.And):
            return BOOL, lambda values: all(part(values) is True for part in parts)
        return BOOL, lambda values: any(part(values) is True for part in parts)

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> tuple[str, Evaluator]:
        if isinstance(node.op, ast.Not):
            inner = self._expect(node.operand, BOOL, depth, "not")
            return BOOL, lambda values: inner(values) is not True
        if isinstance(node.op, ast.USub):
            number = self._expect(node.operand, NUMBER, depth, "-")

            def negate(values: Mapping[str, Any]) -> Any:
                value = number(values)
                return None if value is None else -value

            return NUMBER, negate
        raise ExpressionError(
            _("%(form)s is not allowed in a rule") % {"form": _describe(node.op)},
            column=_column(node),
        )

    def _BinOp(self, node: ast.BinOp, depth: int) -> tuple[str, Evaluator]:
        apply = _ARITHMETIC.get(type(node.op))
        if apply is None:
            raise ExpressionError(
                _("%(form)s is not allowed in a rule") % {"form": _describe(node.op)},
                column=_column(node),
            )
        symbol = _SYMBOL[type(node.op)]
        left = self._expect(node.left, NUMBER, depth, symbol)
        right = self._expect(node.right, NUMBER, depth, symbol)

        def arithmetic(values: Mapping[str, Any]) -> Any:
            a, b = left(values), right(values)
            if a is None or b is None:
                return None
            return apply(a, b)

        return NUMBER, arithmetic

    def _Compare(self, node: ast.Compare, depth: int) -> tuple[str, Evaluator]:
        if len(node.ops) != 1:
            raise ExpressionError(
                _("compare two things at a time (join comparisons with and)"),
                column=_column(node),
            )
        op, right_node = node.ops[0], node.comparators[0]
        left_kind, left = self.build(node.left, depth)
        if isinstance(op, ast.In | ast.NotIn):
            return self._membership(op, left_kind, left, right_node, depth)
        compare = _COMPARE.get(type(op))
        if compare is None:
            raise ExpressionError(
                _("%(form)s is not allowed in a rule") % {"form": _describe(op)},
                column=_column(node),
            )
        right_kind, right = self.build(right_node, depth)
        symbol = _SYMBOL[type(op)]
        if left_kind != right_kind:
            raise ExpressionError(
                _("%(op)s compares a %(left)s with a %(right)s")
                % {"op": symbol, "left": left_kind, "right": right_kind},
                column=_column(node),
            )
        if isinstance(op, _ORDERING) and left_kind != NUMBER:
            raise ExpressionError(
                _("%(op)s needs numbers, not %(kind)s") % {"op": symbol, "kind": left_kind},
                column=_column(node),
            )

        def comparison(values: Mapping[str, Any]) -> bool:
            a, b = left(values), right(values)
            if a is None or b is None:
                return False
            return bool(compare(a, b))

        return BOOL, comparison

    def _membership(
        self, op: ast.cmpop, kind: str, left: Evaluator, right_node: ast.AST, depth: int
    ) -> tuple[str, Evaluator]:
        symbol = _SYMBOL[type(op)]
        if not isinstance(right_node, ast.List | ast.Tuple):
            raise ExpressionError(
                _('%(op)s takes a list of values, such as ["SE", "NO"]') % {"op": symbol},
                column=_column(right_node),
            )
        if len(right_node.elts) > MAX_LIST:
            raise ExpressionError(
                _("a list of at most %(most)s values") % {"most": MAX_LIST},
                column=_column(right_node),
            )
        if kind == BOOL:
            raise ExpressionError(
                _("%(op)s needs a number or a text on its left") % {"op": symbol},
                column=_column(right_node),
            )
        members = set()
        for item in right_node.elts:
            self.nodes += 1
            value = item.value if isinstance(item, ast.Constant) else None
            if (
                isinstance(item, ast.UnaryOp)
                and isinstance(item.op, ast.USub)
                and isinstance(item.operand, ast.Constant)
            ):
                negated = item.operand.value
                value = None
                if isinstance(negated, int | float) and not isinstance(negated, bool):
                    value = -negated
            if value is None or _kind_of_literal(value) != kind:
                raise ExpressionError(
                    _("the list after %(op)s holds only %(kind)s values")
                    % {"op": symbol, "kind": kind},
                    column=_column(item),
                )
            members.add(value)
        frozen = frozenset(members)
        negated = isinstance(op, ast.NotIn)

        def membership(values: Mapping[str, Any]) -> bool:
            value = left(values)
            if value is None:
                return False
            return (value in frozen) is not negated

        return BOOL, membership

    def _expect(self, node: ast.AST, kind: str, depth: int, op: str) -> Evaluator:
        got, evaluator = self.build(node, depth)
        if got != kind:
            raise ExpressionError(
                _("%(op)s needs a %(kind)s, not a %(got)s") % {"op": op, "kind": kind, "got": got},
                column=_column(node),
            )
        return evaluator


def _describe(node: ast.AST) -> str:
    names = {
        "Attribute": _("attribute access (.)"),
        "Call": _("a function call"),
        "Subscript": _("indexing ([...])"),
        "Lambda": _("lambda"),
        "ListComp": _("a comprehension"),
        "SetComp": _("a comprehension"),
        "DictComp": _("a comprehension"),
        "GeneratorExp": _("a comprehension"),
        "Pow": _("the power operator (**)"),
        "JoinedStr": _("an f-string"),
        "IfExp": _("if/else"),
        "NamedExpr": _("assignment (:=)"),
        "Starred": _("unpacking (*)"),
    }
    name = type(node).__name__
    return str(names.get(name, name))


def compile_expression(text: object, kinds: Mapping[str, str]) -> CompiledExpression:
    """Check ``text`` against the features' kinds (name -> number|text|bool) and return its
    evaluator; raise ExpressionError (position and cause) for anything the language refuses.
    The result must be true or false (a condition)."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(_("write a condition, such as amount > 100000"))
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            _("the rule is longer than %(most)s characters") % {"most": MAX_LENGTH}
        )
    if "\n" in text.strip() or "\r" in text:
        text = " ".join(text.split())
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(
            _("syntax error (%(detail)s)") % {"detail": exc.msg}, column=exc.offset
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError(_("the rule is nested too deeply")) from None
    checker = _Checker(kinds)
    try:
        kind, evaluator = checker.build(tree.body)
    except RecursionError:
        raise ExpressionError(_("the rule is nested too deeply")) from None
    if kind != BOOL:
        raise ExpressionError(
            _("a rule is a condition (true or false), not a %(kind)s") % {"kind": kind},
            column=_column(tree.body),
        )
    return CompiledExpression(
        text=text.strip(), features=frozenset(checker.used), evaluate=evaluator
    )

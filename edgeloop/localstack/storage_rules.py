"""An evaluator of Firebase Storage security rules (``infra/firebase/storage.rules``).

Pure: text in, decisions out, no I/O. The local stack's Firebase Storage front
(``firebase_storage.py``) decides every request with it, and the rules tests go
through that front, so one evaluator serves both.

It covers the part of the rules language a Storage ruleset of this product
needs, and fails closed on everything else:

* ``rules_version = '2'`` (required) and one ``service firebase.storage`` block;
* nested ``match`` blocks whose paths have literal segments, ``{var}`` (one
  segment) and ``{var=**}`` (zero or more segments, rules version 2; bound as a
  string);
* ``allow <methods>: if <expr>;`` and ``allow <methods>;`` with the methods
  ``read`` (get, list), ``write`` (create, update, delete), ``get``, ``list``,
  ``create``, ``update``, ``delete``; any matching statement grants;
* ``function name(a, b) { let x = <expr>; return <expr>; }`` (no recursion);
* expressions: ``null true false``, integers, floats, '…' and "…" strings,
  ``[…]`` lists, ``( )``, ``a ? b : c``, ``|| && !``, ``== != < <= > >=``,
  ``in`` (list element, map key), ``is`` (string, int, float, number, bool,
  list, map), ``+ - * / %``, unary ``-``, member access and ``[index]``;
* methods: ``string.matches(re)`` (whole-string match), ``string.size()``,
  ``lower() upper() trim()``, ``list.size() hasAll() hasAny() hasOnly()``,
  ``map.keys() values() size() get(key, default)``; global ``int() float()
  string()``;
* the request: ``request.auth`` (null, or ``uid`` and ``token`` with every
  claim of the verified ID token), ``request.resource`` (the object being
  written: ``name bucket size contentType metadata md5Hash``…),
  ``request.path`` and ``resource`` (the stored object, or null).

Errors follow the rules language: a missing field, a type mismatch or any
construct this module does not know is an error, which ``&&``/``||`` absorb
only when their other side decides the result; a condition that ends in an
error, or in anything but ``true``, denies. A file this module cannot parse
(an unknown keyword, operator, a ``service`` other than Storage, rules version
1) raises ``RulesSyntaxError``: the caller then denies every request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

OPERATIONS = frozenset({"get", "list", "create", "update", "delete"})
_METHOD_GROUPS = {"read": {"get", "list"}, "write": {"create", "update", "delete"}}
MAX_CALL_DEPTH = 20


class RulesSyntaxError(ValueError):
    """The rules file uses something this evaluator does not cover (or is malformed)."""


class RulesError(Exception):
    """An expression evaluated to an error (the rules language's error value)."""


# --- tokens ------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<float>\d+\.\d+)
  | (?P<int>\d+)
  | (?P<string>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%<>!?:;,.()\[\]{}=])
    """,
    re.X | re.S,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


@dataclass(frozen=True)
class _Token:
    kind: str
    value: Any
    at: int


def _unescape(body: str) -> str:
    def one(match: re.Match) -> str:
        char = match.group(1)
        if char not in _ESCAPES:
            raise RulesSyntaxError(f"unknown escape \\{char}")
        return _ESCAPES[char]

    return re.sub(r"\\(.)", one, body)


def _tokens(text: str) -> list[_Token]:
    out, position = [], 0
    while position < len(text):
        found = _TOKEN.match(text, position)
        if not found:
            raise RulesSyntaxError(f"unexpected character {text[position]!r} at offset {position}")
        kind = found.lastgroup
        raw = found.group(0)
        if kind == "int":
            out.append(_Token("int", int(raw), position))
        elif kind == "float":
            out.append(_Token("float", float(raw), position))
        elif kind == "string":
            out.append(_Token("string", _unescape(raw[1:-1]), position))
        elif kind in ("name", "op"):
            out.append(_Token(kind, raw, position))
        position = found.end()
    out.append(_Token("end", None, position))
    return out


# --- syntax tree ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class ListExpr:
    items: tuple


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Member:
    target: Any
    name: str


@dataclass(frozen=True)
class Index:
    target: Any
    index: Any


@dataclass(frozen=True)
class Call:
    target: Any  # None for a global function
    name: str
    args: tuple


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Any


@dataclass(frozen=True)
class Binary:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Conditional:
    test: Any
    then: Any
    otherwise: Any


@dataclass(frozen=True)
class Function:
    params: tuple[str, ...]
    lets: tuple[tuple[str, Any], ...]
    body: Any


@dataclass(frozen=True)
class Allow:
    operations: frozenset[str]
    condition: Any  # None: unconditional


@dataclass
class Match:
    segments: tuple[str, ...]
    allows: list[Allow] = field(default_factory=list)
    children: list["Match"] = field(default_factory=list)
    functions: dict[str, Function] = field(default_factory=dict)


_TYPES = {"string", "int", "float", "number", "bool", "list", "map"}
_RESERVED = {"true", "false", "null", "in", "is", "if", "allow", "match", "function", "return", "let"}


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0

    # helpers
    def peek(self, offset: int = 0) -> _Token:
        return self.tokens[min(self.at + offset, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.peek()
        self.at += 1
        return token

    def accept(self, value: str) -> bool:
        token = self.peek()
        if token.kind in ("op", "name") and token.value == value:
            self.at += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.accept(value):
            token = self.peek()
            raise RulesSyntaxError(f"expected {value!r}, found {token.value!r} at offset {token.at}")

    def identifier(self) -> str:
        token = self.take()
        if token.kind != "name" or token.value in _RESERVED:
            raise RulesSyntaxError(f"expected a name, found {token.value!r} at offset {token.at}")
        return token.value

    # the file
    def ruleset(self) -> Match:
        self.expect("rules_version")
        self.expect("=")
        version = self.take()
        if version.kind != "string" or version.value != "2":
            raise RulesSyntaxError("only rules_version = '2' is supported")
        self.expect(";")
        self.expect("service")
        service = [self.identifier()]
        while self.accept("."):
            service.append(self.identifier())
        if ".".join(service) != "firebase.storage":
            raise RulesSyntaxError(f"service {'.'.join(service)} is not firebase.storage")
        root = Match(segments=())
        self.expect("{")
        self.block_body(root)
        if self.peek().kind != "end":
            raise RulesSyntaxError(f"unexpected {self.peek().value!r} after the service block")
        return root

    def block_body(self, match: Match) -> None:
        while not self.accept("}"):
            token = self.peek()
            if token.kind == "end":
                raise RulesSyntaxError("unterminated block")
            if self.accept("match"):
                match.children.append(self.match())
            elif self.accept("allow"):
                match.allows.append(self.allow())
            elif self.accept("function"):
                name, function = self.function()
                if name in match.functions:
                    raise RulesSyntaxError(f"function {name} defined twice")
                match.functions[name] = function
            else:
                raise RulesSyntaxError(f"unknown statement {token.value!r} at offset {token.at}")

    def match(self) -> Match:
        # the path is raw text: '/' then segments up to the block's '{' that follows whitespace
        start = self.peek().at
        path = re.match(r"(/(?:\{[A-Za-z_]\w*(?:=\*\*)?\}|[A-Za-z0-9_.~-]+))+", self.text[start:])
        if not path:
            raise RulesSyntaxError(f"bad match path at offset {start}")
        end = start + path.end()
        while self.peek().at < end:
            self.take()
        if self.peek().at != end and self.text[end:self.peek().at].strip():
            raise RulesSyntaxError(f"bad match path at offset {start}")
        segments = tuple(path.group(0).strip("/").split("/"))
        for position, segment in enumerate(segments):
            if segment.endswith("=**}") and position != len(segments) - 1:
                raise RulesSyntaxError(f"{{…=**}} must be the last segment of a match path ({path.group(0)})")
        match = Match(segments=segments)
        self.expect("{")
        self.block_body(match)
        return match

    def allow(self) -> Allow:
        operations = set()
        while True:
            method = self.identifier()
            if method in _METHOD_GROUPS:
                operations |= _METHOD_GROUPS[method]
            elif method in OPERATIONS:
                operations.add(method)
            else:
                raise RulesSyntaxError(f"unknown method {method!r} in allow")
            if not self.accept(","):
                break
        condition = None
        if self.accept(":"):
            self.expect("if")
            condition = self.expression()
        self.expect(";")
        return Allow(frozenset(operations), condition)

    def function(self) -> tuple[str, Function]:
        name = self.identifier()
        self.expect("(")
        params: list[str] = []
        if not self.accept(")"):
            while True:
                params.append(self.identifier())
                if self.accept(")"):
                    break
                self.expect(",")
        self.expect("{")
        lets = []
        while self.accept("let"):
            variable = self.identifier()
            self.expect("=")
            lets.append((variable, self.expression()))
            self.expect(";")
        self.expect("return")
        body = self.expression()
        self.accept(";")
        self.expect("}")
        return name, Function(tuple(params), tuple(lets), body)

    # expressions, lowest precedence first
    def expression(self):
        test = self.disjunction()
        if self.accept("?"):
            then = self.expression()
            self.expect(":")
            return Conditional(test, then, self.expression())
        return test

    def disjunction(self):
        left = self.conjunction()
        while self.accept("||"):
            left = Binary("||", left, self.conjunction())
        return left

    def conjunction(self):
        left = self.comparison()
        while self.accept("&&"):
            left = Binary("&&", left, self.comparison())
        return left

    def comparison(self):
        left = self.additive()
        while True:
            token = self.peek()
            if token.kind == "op" and token.value in ("==", "!=", "<", "<=", ">", ">="):
                self.take()
                left = Binary(token.value, left, self.additive())
            elif self.accept("in"):
                left = Binary("in", left, self.additive())
            elif self.accept("is"):
                kind = self.identifier()
                if kind not in _TYPES:
                    raise RulesSyntaxError(f"unknown type {kind!r} after 'is'")
                left = Binary("is", left, Literal(kind))
            else:
                return left

    def additive(self):
        left = self.multiplicative()
        while self.peek().kind == "op" and self.peek().value in ("+", "-"):
            left = Binary(self.take().value, left, self.multiplicative())
        return left

    def multiplicative(self):
        left = self.unary()
        while self.peek().kind == "op" and self.peek().value in ("*", "/", "%"):
            left = Binary(self.take().value, left, self.unary())
        return left

    def unary(self):
        if self.accept("!"):
            return Unary("!", self.unary())
        if self.accept("-"):
            return Unary("-", self.unary())
        return self.postfix()

    def postfix(self):
        node = self.primary()
        while True:
            if self.accept("."):
                name = self.identifier()
                if self.peek().value == "(" and self.peek().kind == "op":
                    node = Call(node, name, self.arguments())
                else:
                    node = Member(node, name)
            elif self.accept("["):
                index = self.expression()
                self.expect("]")
                node = Index(node, index)
            else:
                return node

    def arguments(self) -> tuple:
        self.expect("(")
        args = []
        if not self.accept(")"):
            while True:
                args.append(self.expression())
                if self.accept(")"):
                    break
                self.expect(",")
        return tuple(args)

    def primary(self):
        token = self.take()
        if token.kind in ("int", "float", "string"):
            return Literal(token.value)
        if token.kind == "name":
            if token.value in ("true", "false"):
                return Literal(token.value == "true")
            if token.value == "null":
                return Literal(None)
            if token.value in _RESERVED:
                raise RulesSyntaxError(f"unexpected {token.value!r} at offset {token.at}")
            if self.peek().kind == "op" and self.peek().value == "(":
                return Call(None, token.value, self.arguments())
            return Name(token.value)
        if token.kind == "op" and token.value == "(":
            inner = self.expression()
            self.expect(")")
            return inner
        if token.kind == "op" and token.value == "[":
            items = []
            if not self.accept("]"):
                while True:
                    items.append(self.expression())
                    if self.accept("]"):
                        break
                    self.expect(",")
            return ListExpr(tuple(items))
        raise RulesSyntaxError(f"unexpected {token.value!r} at offset {token.at}")


# --- values --------------------------------------------------------------------------------

def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "map"
    raise RulesError(f"a value of type {type(value).__name__} has no rules type")


def _number(value: Any) -> bool:
    return _kind(value) in ("int", "float")


def _equal(left: Any, right: Any) -> bool:
    kl, kr = _kind(left), _kind(right)
    if _number(left) and _number(right):
        return left == right
    if kl != kr:
        return False
    if kl == "list":
        return len(left) == len(right) and all(_equal(a, b) for a, b in zip(left, right))
    if kl == "map":
        return left.keys() == right.keys() and all(_equal(left[k], right[k]) for k in left)
    return left == right


def _compare(op: str, left: Any, right: Any) -> bool:
    if not ((_number(left) and _number(right)) or (_kind(left) == _kind(right) == "string")):
        raise RulesError(f"cannot compare {_kind(left)} {op} {_kind(right)}")
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _arithmetic(op: str, left: Any, right: Any) -> Any:
    kl, kr = _kind(left), _kind(right)
    if op == "+" and kl == kr and kl in ("string", "list"):
        return left + right
    if not (_number(left) and _number(right)):
        raise RulesError(f"cannot compute {kl} {op} {kr}")
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if right == 0:
        raise RulesError("division by zero")
    if kl == kr == "int":
        quotient = abs(left) // abs(right) * (1 if (left >= 0) == (right >= 0) else -1)  # truncates, as in C
        return quotient if op == "/" else left - right * quotient
    if op == "/":
        return left / right
    raise RulesError("% needs integers")


def _is(value: Any, kind: str) -> bool:
    actual = _kind(value)
    return actual == kind or (kind == "number" and actual in ("int", "float"))


def _matches(text: str, pattern: str) -> bool:
    try:
        return re.fullmatch(pattern, text) is not None
    except re.error as exc:
        raise RulesError(f"bad regular expression {pattern!r}: {exc}") from None


def _method(target: Any, name: str, args: list) -> Any:
    kind = _kind(target)
    arity = len(args)
    if kind == "string":
        if name == "matches" and arity == 1 and _kind(args[0]) == "string":
            return _matches(target, args[0])
        if name == "size" and arity == 0:
            return len(target)
        if name in ("lower", "upper", "trim") and arity == 0:
            return {"lower": target.lower, "upper": target.upper, "trim": target.strip}[name]()
    elif kind == "list":
        if name == "size" and arity == 0:
            return len(target)
        if name in ("hasAll", "hasAny", "hasOnly") and arity == 1 and _kind(args[0]) == "list":
            contains = [any(_equal(item, x) for x in target) for item in args[0]]
            if name == "hasAll":
                return all(contains)
            if name == "hasAny":
                return any(contains)
            return all(any(_equal(x, item) for item in args[0]) for x in target)
    elif kind == "map":
        if name == "keys" and arity == 0:
            return list(target.keys())
        if name == "values" and arity == 0:
            return list(target.values())
        if name == "size" and arity == 0:
            return len(target)
        if name == "get" and arity == 2 and _kind(args[0]) == "string":
            return target.get(args[0], args[1])
    raise RulesError(f"{kind}.{name}() with {arity} argument(s) is not supported")


def _global(name: str, args: list) -> Any:
    if len(args) == 1:
        value, kind = args[0], _kind(args[0])
        try:
            if name == "int" and kind in ("int", "float", "string"):
                return int(value)
            if name == "float" and kind in ("int", "float", "string"):
                return float(value)
        except ValueError:
            raise RulesError(f"{name}({value!r})") from None
        if name == "string" and kind in ("int", "float", "string", "bool", "null"):
            return {True: "true", False: "false", None: "null"}.get(value, str(value)) if kind in ("bool", "null") else str(value)
    raise RulesError(f"unknown function {name}() with {len(args)} argument(s)")


class _Scope:
    def __init__(self, variables: dict[str, Any], functions: dict[str, Function], depth: int = 0):
        self.variables = variables
        self.functions = functions
        self.depth = depth

    def evaluate(self, node) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, ListExpr):
            return [self.evaluate(item) for item in node.items]
        if isinstance(node, Name):
            if node.name not in self.variables:
                raise RulesError(f"unknown variable {node.name}")
            return self.variables[node.name]
        if isinstance(node, Member):
            target = self.evaluate(node.target)
            if _kind(target) != "map" or node.name not in target:
                raise RulesError(f"no field {node.name} on {_kind(target)}")
            return target[node.name]
        if isinstance(node, Index):
            target, index = self.evaluate(node.target), self.evaluate(node.index)
            if _kind(target) == "map" and _kind(index) == "string" and index in target:
                return target[index]
            if _kind(target) == "list" and _kind(index) == "int" and -len(target) <= index < len(target):
                return target[index]
            raise RulesError(f"cannot index {_kind(target)} with {index!r}")
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Unary):
            value = self.evaluate(node.operand)
            if node.op == "!":
                if _kind(value) != "bool":
                    raise RulesError(f"! of {_kind(value)}")
                return not value
            if not _number(value):
                raise RulesError(f"- of {_kind(value)}")
            return -value
        if isinstance(node, Conditional):
            test = self.evaluate(node.test)
            if _kind(test) != "bool":
                raise RulesError("a ?: test must be a bool")
            return self.evaluate(node.then if test else node.otherwise)
        if isinstance(node, Binary):
            return self.binary(node)
        raise RulesError(f"unknown expression {type(node).__name__}")

    def boolean(self, node) -> bool | RulesError:
        try:
            value = self.evaluate(node)
        except RulesError as exc:
            return exc
        if _kind(value) != "bool":
            return RulesError(f"expected a bool, got {_kind(value)}")
        return value

    def binary(self, node: Binary) -> Any:
        if node.op in ("&&", "||"):
            decisive = node.op == "||"  # the value that decides the result on its own
            left = self.boolean(node.left)
            if left is decisive:
                return decisive
            right = self.boolean(node.right)
            if right is decisive:
                return decisive
            if isinstance(left, RulesError):
                raise left
            if isinstance(right, RulesError):
                raise right
            return not decisive
        left = self.evaluate(node.left)
        if node.op == "is":
            return _is(left, node.right.value)
        right = self.evaluate(node.right)
        if node.op == "==":
            return _equal(left, right)
        if node.op == "!=":
            return not _equal(left, right)
        if node.op in ("<", "<=", ">", ">="):
            return _compare(node.op, left, right)
        if node.op == "in":
            if _kind(right) == "list":
                return any(_equal(left, item) for item in right)
            if _kind(right) == "map" and _kind(left) == "string":
                return left in right
            raise RulesError(f"{_kind(left)} in {_kind(right)}")
        return _arithmetic(node.op, left, right)

    def call(self, node: Call) -> Any:
        if node.target is not None:
            target = self.evaluate(node.target)
            return _method(target, node.name, [self.evaluate(a) for a in node.args])
        args = [self.evaluate(a) for a in node.args]
        function = self.functions.get(node.name)
        if function is None:
            return _global(node.name, args)
        if len(args) != len(function.params):
            raise RulesError(f"{node.name}() takes {len(function.params)} argument(s)")
        if self.depth >= MAX_CALL_DEPTH:
            raise RulesError("function calls nested too deep (recursion is not allowed)")
        # a function sees the variables of the match it is declared in: here, every variable
        # bound on the way down (the evaluator binds them all), then its parameters and lets
        inner = _Scope({**self.variables, **dict(zip(function.params, args))}, self.functions, self.depth + 1)
        for variable, expression in function.lets:
            inner.variables[variable] = inner.evaluate(expression)
        return inner.evaluate(function.body)


# --- matching and deciding ----------------------------------------------------------------

def _match_segments(pattern: tuple[str, ...], path: list[str]) -> list[tuple[dict[str, str], list[str]]]:
    """Every way ``pattern`` consumes a prefix of ``path``: (bound variables, the rest)."""
    if not pattern:
        return [({}, path)]
    head, rest = pattern[0], pattern[1:]
    wildcard = re.fullmatch(r"\{(\w+)(=\*\*)?\}", head)
    if wildcard and wildcard.group(2):  # the last segment: zero or more path segments
        return [({wildcard.group(1): "/".join(path)}, [])]
    if not path:
        return []
    if wildcard:
        bound = {wildcard.group(1): path[0]}
    elif head == path[0]:
        bound = {}
    else:
        return []
    return [({**bound, **more}, remaining) for more, remaining in _match_segments(rest, path[1:])]


@dataclass(frozen=True)
class Request:
    """What a rule sees of one request. ``auth`` is None or {"uid": …, "token": {claims}};
    ``resource`` is the object as it would be after a create/update (None otherwise)."""

    operation: str
    bucket: str
    name: str
    auth: dict | None = None
    resource: dict | None = None
    stored: dict | None = None  # the object as stored now (the rules' ``resource``), or None


class StorageRules:
    """A parsed storage.rules file. ``allows(request)`` is True only if some matching statement grants it."""

    def __init__(self, root: Match):
        self._root = root

    @classmethod
    def parse(cls, text: str) -> "StorageRules":
        return cls(_Parser(text).ruleset())

    def allows(self, request: Request) -> bool:
        if request.operation not in OPERATIONS:
            return False
        path = ["b", request.bucket, "o", *request.name.split("/")]
        if not request.name or "" in path:
            return False  # no empty segments: "a//b", "/a", "a/" name no object
        context = {
            "request": {
                "auth": request.auth, "resource": request.resource,
                "path": f"/b/{request.bucket}/o/{request.name}",
            },
            "resource": request.stored,
        }
        return any(self._granted(self._root, path, context, {}, request.operation))

    def _granted(self, match: Match, path: list[str], variables: dict, functions: dict, operation: str):
        functions = {**functions, **match.functions}
        for child in match.children:
            for bound, rest in _match_segments(child.segments, path):
                scope_variables = {**variables, **bound}
                if not rest:
                    yield from self._decide(child, scope_variables, {**functions, **child.functions}, operation)
                yield from self._granted(child, rest, scope_variables, functions, operation)

    @staticmethod
    def _decide(match: Match, variables: dict, functions: dict, operation: str):
        for statement in match.allows:
            if operation not in statement.operations:
                continue
            if statement.condition is None:
                yield True
                continue
            scope = _Scope(dict(variables), functions)
            yield scope.boolean(statement.condition) is True


def evaluate_expression(text: str, variables: dict[str, Any] | None = None) -> Any:
    """Evaluate one expression (for tests): the value, or a ``RulesError``/``RulesSyntaxError`` raised."""
    parser = _Parser(text)
    node = parser.expression()
    if parser.peek().kind != "end":
        raise RulesSyntaxError(f"unexpected {parser.peek().value!r}")
    return _Scope(dict(variables or {}), {}).evaluate(node)


Decider = Callable[[Request], bool]

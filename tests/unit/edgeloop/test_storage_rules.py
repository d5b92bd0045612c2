"""The storage.rules evaluator: the language subset it covers, and closed on everything else."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeloop.localstack import storage_rules
from edgeloop.localstack.storage_rules import Request, RulesError, RulesSyntaxError, StorageRules, evaluate_expression

REPO = Path(__file__).resolve().parents[3]
RULES_FILE = REPO / "infra" / "firebase" / "storage.rules"
ALICE = {"uid": "alice", "token": {"role": "device", "email_verified": True}}
PNG = {"name": "x", "bucket": "b", "size": 2048, "contentType": "image/png", "metadata": {"label": "3"}}


def rules(body: str) -> StorageRules:
    return StorageRules.parse("rules_version = '2';\nservice firebase.storage {\n  match /b/{bucket}/o {\n" + body + "\n  }\n}\n")


def allows(ruleset, operation, name, auth=ALICE, resource=None, stored=None) -> bool:
    return ruleset.allows(Request(operation, "b", name, auth=auth, resource=resource, stored=stored))


# --- the product's file -------------------------------------------------------------------

def test_the_products_rules_file_parses():
    StorageRules.parse(RULES_FILE.read_text())


def test_the_products_rules_decide_the_basic_cases():
    ruleset = StorageRules.parse(RULES_FILE.read_text())
    upload = "uploads/digits/alice/0b4c8e.png"
    assert allows(ruleset, "create", upload, resource=PNG)
    assert not allows(ruleset, "create", upload, auth=None, resource=PNG)
    assert not allows(ruleset, "create", "uploads/digits/bob/0b4c8e.png", resource=PNG)
    assert not allows(ruleset, "update", upload, resource=PNG, stored=PNG)
    assert not allows(ruleset, "get", upload, stored=PNG)
    assert allows(ruleset, "get", "models/digits/v1/model.tflite")
    assert not allows(ruleset, "list", "models/digits/v1/model.tflite")
    assert not allows(ruleset, "get", "models/digits/v1/manifest.json")


# --- matching -------------------------------------------------------------------------------

def test_a_single_wildcard_takes_one_segment_and_a_recursive_one_zero_or_more():
    ruleset = rules("""
        match /one/{x} { allow get: if x == 'a'; }
        match /deep/{rest=**} { allow get: if rest == '' || rest.matches('a(/b)?'); }
    """)
    assert allows(ruleset, "get", "one/a")
    assert not allows(ruleset, "get", "one/a/b") and not allows(ruleset, "get", "one/b")
    assert allows(ruleset, "get", "deep/a") and allows(ruleset, "get", "deep/a/b")
    assert not allows(ruleset, "get", "deep/a/c")


def test_read_and_write_stand_for_their_methods_and_any_matching_statement_grants():
    ruleset = rules("""
        match /r/{f} { allow read; }
        match /w/{f} { allow write: if true; }
        match /{all=**} { allow create: if all == 'w/x'; }
        match /n/{f} { allow get: if false; allow get: if f == 'ok'; }
    """)
    assert allows(ruleset, "get", "r/x") and allows(ruleset, "list", "r/x")
    assert not allows(ruleset, "create", "r/x")
    assert all(allows(ruleset, op, "w/x") for op in ("create", "update", "delete"))
    assert not allows(ruleset, "get", "w/x")
    assert allows(ruleset, "get", "n/ok") and not allows(ruleset, "get", "n/no")


@pytest.mark.parametrize("name", ["", "/a", "a/", "a//b"])
def test_names_with_empty_segments_are_denied(name):
    assert not allows(rules("match /{all=**} { allow read, write; }"), "get", name)


def test_an_operation_outside_the_five_is_denied():
    assert not allows(rules("match /{all=**} { allow read, write; }"), "getAll", "a")


def test_functions_see_their_arguments_lets_and_the_path_variables():
    ruleset = rules("""
        function owns(uid) { let me = request.auth.uid; return me == uid && model != 'secret'; }
        match /u/{model}/{uid}/{f} { allow create: if owns(uid); }
    """)
    assert allows(ruleset, "create", "u/m/alice/x", resource=PNG)
    assert not allows(ruleset, "create", "u/m/bob/x", resource=PNG)
    assert not allows(ruleset, "create", "u/secret/alice/x", resource=PNG)


def test_recursion_is_an_error_so_denied():
    ruleset = rules("function f(n) { return f(n); }\n match /{all=**} { allow get: if f(1); }")
    assert not allows(ruleset, "get", "a")


# --- expressions ------------------------------------------------------------------------------

@pytest.mark.parametrize("expression, value", [
    ("1 + 2 * 3 == 7", True),
    ("5 * 1024 * 1024", 5 * 1024 * 1024),
    ("7 / 2", 3), ("-7 / 2", -3), ("7 % 3", 1), ("1.5 * 2", 3.0),
    ("'a' + \"b\"", "ab"), ("[1] + [2]", [1, 2]),
    ("1 == 1.0", True), ("1 == '1'", False), ("null == null", True), ("[1, 'a'] == [1, 'a']", True),
    ("'abc'.matches('a.c')", True), ("'abcd'.matches('a.c')", False),
    ("'abc'.size() == 3 && 'AbC'.lower() == 'abc' && ' x '.trim() == 'x'", True),
    ("['a', 'b'].hasOnly(['a', 'b', 'c'])", True), ("['a', 'z'].hasOnly(['a', 'b'])", False),
    ("['a', 'b'].hasAll(['a'])", True), ("['a'].hasAny(['z'])", False),
    ("'a' in ['a', 'b']", True), ("'k' in m", True), ("'z' in m", False),
    ("m.keys().hasOnly(['k', 'n'])", True), ("m.get('z', 'd')", "d"), ("m.get('k', 'd')", "v"), ("m['k']", "v"),
    ("m.size() == 1 && m.values() == ['v']", True),
    ("true ? 1 : 2", 1), ("!(1 > 2)", True), ("'b' > 'a'", True),
    ("1 is int && 1.0 is float && 1 is number && 'a' is string && m is map && [] is list && true is bool", True),
    ("int('12') + 1", 13), ("string(3)", "3"), ("string(true)", "true"),
    ("false && undefined_name", False), ("true || undefined_name", True),
    ("undefined_name || true", True), ("undefined_name && false", False),
])
def test_expressions_evaluate_as_in_the_rules_language(expression, value):
    assert evaluate_expression(expression, {"m": {"k": "v"}}) == value


@pytest.mark.parametrize("expression", [
    "undefined_name", "m.missing", "m.k.x", "null.uid", "1 + 'a'", "1 < 'a'", "!1", "1 / 0", "'a'.matches('(')",
    "'a'.startsWith('a')", "m.keys().first()", "unknown_function(1)", "true && undefined_name",
    "false || undefined_name", "m['z']", "[1][3]", "-'a'", "1 ? 2 : 3", "1 in 2",
])
def test_errors_are_errors(expression):
    with pytest.raises(RulesError):
        evaluate_expression(expression, {"m": {"k": "v"}})


@pytest.mark.parametrize("source", [
    "a = 1", "a ~ b", "a ^ b", "{'k': 1}", "a is path", "a.", "(a", "[1, ", "'unterminated", "a b", "1 +",
    "`x`", "a;", "if", "'\\q'",
])
def test_syntax_it_does_not_know_is_a_syntax_error(source):
    with pytest.raises(RulesSyntaxError):
        evaluate_expression(source)


@pytest.mark.parametrize("text", [
    "rules_version = '1'; service firebase.storage { }",
    "service firebase.storage { match /b/{bucket}/o { allow read; } }",
    "rules_version = '2'; service cloud.firestore { }",
    "rules_version = '2'; service firebase.storage { match /b/{bucket}/o { allow read: if true } }",
    "rules_version = '2'; service firebase.storage { match /b/{bucket}/o { allow peek: if true; } }",
    "rules_version = '2'; service firebase.storage { match /b/{bucket}/o { deny read; } }",
    "rules_version = '2'; service firebase.storage { match /b/{bucket}/o { match /{a=**}/x { allow read; } } }",
    "rules_version = '2'; service firebase.storage { match /b/{bucket}/o { allow read: if firestore.get(/databases/x); } }",
    "rules_version = '2'; service firebase.storage { match /b/{bucket}/o { allow read; }",
    "rules_version = '2'; service firebase.storage { } extra",
])
def test_a_file_it_does_not_cover_does_not_parse(text):
    with pytest.raises(RulesSyntaxError):
        StorageRules.parse(text)


def test_unknown_fields_and_methods_deny_instead_of_being_guessed():
    ruleset = rules("""
        match /t/{f} { allow get: if request.time < timestamp.value(0); }
        match /c/{f} { allow get: if request.auth.token.role == 'admin' || request.auth.token.nonexistent == 1; }
        match /e/{f} { allow get: if request.auth.token.email_verified; }
    """)
    assert not allows(ruleset, "get", "t/x")
    assert not allows(ruleset, "get", "c/x")
    assert allows(ruleset, "get", "e/x")
    assert not allows(ruleset, "get", "e/x", auth={"uid": "bob", "token": {}})  # a missing claim: error, denied
    assert not allows(ruleset, "get", "e/x", auth=None)


def test_a_condition_must_be_exactly_true():
    ruleset = rules("match /a/{f} { allow get: if 1; }\n match /b/{f} { allow get: if 'true'; }")
    assert not allows(ruleset, "get", "a/x") and not allows(ruleset, "get", "b/x")


# --- properties ---------------------------------------------------------------------------------

names = st.lists(st.text(st.sampled_from("abcxyz.-_/"), min_size=0, max_size=8), min_size=1, max_size=6).map("/".join)
principals = st.one_of(st.none(), st.builds(lambda uid: {"uid": uid, "token": {}}, st.sampled_from(["alice", "bob", ""])))
operations = st.sampled_from(sorted(storage_rules.OPERATIONS))
resources = st.one_of(st.none(), st.fixed_dictionaries({
    "size": st.integers(-1, 6 * 1024 * 1024),
    "contentType": st.sampled_from(["image/png", "image/jpeg", "image/gif", "text/html", ""]),
    "metadata": st.one_of(st.none(), st.dictionaries(st.sampled_from(["label", "is_admin", "capture_reason", "confidence"]),
                                                     st.sampled_from(["3", "because", "random_sample", ""]), max_size=3)),
}))


@given(names, principals, operations, resources)
def test_the_product_rules_grant_nothing_outside_uploads_and_model_files(name, auth, operation, resource):
    ruleset = StorageRules.parse(RULES_FILE.read_text())
    granted = ruleset.allows(Request(operation, "b", name, auth=auth, resource=resource, stored=resource))
    if granted:
        assert auth is not None and auth["uid"]
        parts = name.split("/")
        if operation == "create":
            assert len(parts) == 4 and parts[0] == "uploads" and parts[2] == auth["uid"]
            assert 0 < resource["size"] <= 5 * 1024 * 1024 and resource["contentType"] in ("image/png", "image/jpeg")
        else:
            assert operation == "get" and len(parts) == 4 and parts[0] == "models"
            assert parts[3] in ("model.tflite", "model.tflite.sig")


atoms = st.sampled_from(["true", "false", "null", "1", "2.5", "'s'", "[1, 'a']", "m", "m.k", "m.zz", "nothing", "m.keys()"])


def _expressions():
    return st.recursive(atoms, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["&&", "||", "==", "!=", "<", ">=", "+", "*", "in"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda e: f"!{e}"),
        inner.map(lambda e: f"{e}.size()"),
    ), max_leaves=8)


@given(_expressions())
def test_an_expression_has_a_value_or_is_an_error_never_a_crash(expression):
    try:
        evaluate_expression(expression, {"m": {"k": "v"}})
    except RulesError:
        pass


@given(_expressions())
def test_an_allow_grants_only_when_its_condition_is_true(expression):
    ruleset = rules(f"match /x {{ allow get: if {expression}; }}")
    try:
        value = evaluate_expression(expression, {"m": {"k": "v"}, "request": {}, "resource": None})
    except RulesError:
        value = None
    # "m" is no variable of a real request: every reference to it errors there, which must deny
    if "m" not in re.findall(r"\b[a-z]+\b", expression):
        assert allows(ruleset, "get", "x") is (value is True)
    else:
        assert allows(ruleset, "get", "x") is False or value is True


@given(st.text(max_size=80))
def test_any_text_either_parses_or_is_a_syntax_error(text):
    try:
        StorageRules.parse(text)
    except RulesSyntaxError:
        pass


def test_the_module_is_pure():
    tree = ast.parse(Path(storage_rules.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "re", "dataclasses", "typing"}

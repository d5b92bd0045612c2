"""One list of the settings the trainer reads (shared.config.TRAINER_SETTINGS), checked against its code.

The trainer's code is ``trainer_job/`` and every ``shared/`` module it reaches through imports (lazy
imports included). Every ``settings.<field>`` it reads, directly or through a ``Settings`` property, is
either forwarded by the launchers or listed in NOT_FORWARDED_TO_TRAINER with the reason; the
environment built from the list gives back the same values and never holds key material.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

import pytest
from pydantic import SecretStr

from shared import integrity
from shared.config import (
    NOT_FORWARDED_TO_TRAINER, TRAINER_SETTINGS, Gate, Release, Settings, Training, settings_env,
)

REPO = Path(__file__).resolve().parents[3]
ENTRY_POINTS = [REPO / "trainer_job" / "__main__.py", REPO / "trainer_job" / "run.py"]
KEY_VERSION = "projects/acme-prod/secrets/edgeloop-model-signing-key/versions/3"
SETTINGS_NAMES = {"settings"}  # how the code names a Settings object (checked below, so none is missed)


def _imports(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names += [node.module, *[f"{node.module}.{alias.name}" for alias in node.names]]
    return names


def trainer_files() -> list[Path]:
    pending, seen = list(ENTRY_POINTS), []
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.append(path)
        for name in _imports(ast.parse(path.read_text())):
            parts = name.split(".")
            if parts[0] in ("shared", "trainer_job"):
                pending += [c for c in (REPO.joinpath(*parts).with_suffix(".py"), REPO.joinpath(*parts, "__init__.py"))
                            if c.exists()]
    return seen


def _settings_expression(node: ast.AST) -> bool:
    """``settings`` or ``<anything>.settings``."""
    return (isinstance(node, ast.Name) and node.id in SETTINGS_NAMES) or \
        (isinstance(node, ast.Attribute) and node.attr in SETTINGS_NAMES)


def settings_read(path: Path) -> set[str]:
    """Top-level Settings attributes read in one file (``settings.gate.min_accuracy`` -> ``gate``)."""
    found: set[str] = set()
    if path == REPO / "shared" / "config.py":  # defines the settings; its getattr reads only the fields it is given
        return found
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and _settings_expression(node.value):
            found.add(node.attr)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
                and node.args and _settings_expression(node.args[0]):
            pytest.fail(f"{path.relative_to(REPO)} reads a setting by getattr: this test cannot see which")
    return found


def _fields_behind(name: str) -> set[str]:
    """The fields a Settings attribute stands for: itself, or those a property reads from ``self``."""
    if name in Settings.model_fields:
        return {name}
    member = inspect.getattr_static(Settings, name, None)
    if isinstance(member, property):
        tree = ast.parse(textwrap.dedent(inspect.getsource(member.fget)))
        return {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name) and n.value.id == "self"} & set(Settings.model_fields)
    return set()  # a method of the settings object (model_copy, ...), not a setting


def test_the_trainers_code_is_found():
    files = {str(p.relative_to(REPO)) for p in trainer_files()}
    assert {"trainer_job/run.py", "shared/gcp/training_lock.py", "shared/gcp/model_registry.py",
            "shared/gcp/secrets.py", "shared/gate.py"} <= files


def test_every_settings_object_in_the_trainers_code_is_named_so_the_scan_sees_it():
    misnamed = []
    for path in trainer_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.arg) and isinstance(node.annotation, (ast.Name, ast.Constant)):
                annotation = node.annotation.id if isinstance(node.annotation, ast.Name) else node.annotation.value
                if annotation == "Settings" and node.arg not in SETTINGS_NAMES:
                    misnamed.append(f"{path.relative_to(REPO)}: {node.arg}")
    assert not misnamed, f"name these parameters 'settings' (or extend SETTINGS_NAMES): {misnamed}"


def test_the_list_covers_every_setting_the_trainer_reads():
    read: dict[str, set[str]] = {}
    for path in trainer_files():
        for name in settings_read(path):
            for field in _fields_behind(name):
                read.setdefault(field, set()).add(str(path.relative_to(REPO)))
    assert {"project_id", "bucket", "gate", "release", "training", "signing_key_secret"} <= set(read)  # the scan works
    uncovered = {field: sorted(files) for field, files in read.items()
                 if field not in TRAINER_SETTINGS and field not in NOT_FORWARDED_TO_TRAINER}
    assert not uncovered, (
        f"the trainer reads {uncovered} but no launcher forwards them: add them to shared.config.TRAINER_SETTINGS "
        "(or to NOT_FORWARDED_TO_TRAINER with the reason)")
    unread = sorted(set(TRAINER_SETTINGS) - set(read))
    assert not unread, f"TRAINER_SETTINGS lists {unread}, which the trainer never reads"
    assert not set(TRAINER_SETTINGS) & set(NOT_FORWARDED_TO_TRAINER)
    assert set(TRAINER_SETTINGS) | set(NOT_FORWARDED_TO_TRAINER) <= set(Settings.model_fields)


def test_the_environment_gives_the_trainer_the_same_values(monkeypatch):
    launcher = Settings(
        project_id="acme-prod", bucket="acme-prod-edgeloop",
        signing_key_secret=KEY_VERSION,
        gate=Gate(min_accuracy=0.93, gated_stresses=("dark", "blur"), max_latency_us=2500.5),
        release=Release(rollout_steps=(1.0, 25.0, 100.0), max_drop=0.01),
        training=Training(launcher="vertex", lock_ttl_s=900, vertex_service_account=""),
    )
    for name, value in settings_env(launcher).items():
        monkeypatch.setenv(name, value)
    trainer = Settings()
    for field in TRAINER_SETTINGS:
        assert getattr(trainer, field) == getattr(launcher, field), field


def test_the_environment_never_holds_key_material():
    pem = integrity.generate_private_key_pem()
    env = settings_env(Settings(signing_key=SecretStr(pem), signing_key_secret=KEY_VERSION))
    assert "EDGELOOP_SIGNING_KEY" not in env
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    for name, value in env.items():
        assert "PRIVATE KEY" not in value and body not in value, name
        assert not re.search(r"[A-Za-z0-9+/]{40,}={0,2}", value), f"{name} looks like encoded key material"
    with pytest.raises(TypeError):
        settings_env(Settings(signing_key=SecretStr(pem)), ("signing_key",))


@pytest.mark.parametrize("name", [
    "projects/acme/secrets/key/versions/latest", "projects/acme-prod/secrets/edgeloop_key-1/versions/12",
])
def test_the_secret_setting_takes_a_secret_versions_resource_name(name):
    assert Settings(signing_key_secret=name).signing_key_secret == name


@pytest.mark.parametrize("name", [
    "projects/acme/secrets/key", "edgeloop-model-signing-key", "projects/acme/secrets/key/versions/0", "a key itself",
])
def test_anything_else_is_refused(name):
    name = integrity.generate_private_key_pem() if name == "a key itself" else name
    with pytest.raises(ValueError, match="signing_key_secret") as error:
        Settings(signing_key_secret=name)
    assert "PRIVATE KEY" not in str(error.value) and "value not shown" in str(error.value)

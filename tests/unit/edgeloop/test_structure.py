"""How edgeloop's modules depend on each other and on the trainer: no cycles, only the trainer's public surface."""

import ast
import subprocess
import sys
from pathlib import Path

import trainer_job
from edgeloop.localstack import faults, processes, stack, state, wiring

REPO = Path(__file__).resolve().parents[3]


def _imports(package: str) -> dict[str, list[tuple[str, list[str]]]]:
    """module -> [(imported module, names)] for every import that runs (``if TYPE_CHECKING:`` blocks skipped)."""
    found = {}
    for path in sorted((REPO / package).rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        typing_only = {id(node) for branch in ast.walk(tree) if isinstance(branch, ast.If)
                       and getattr(branch.test, "id", None) == "TYPE_CHECKING" for b in branch.body for node in ast.walk(b)}
        found[module] = []
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                found[module] += [(alias.name, []) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found[module].append((node.module, [alias.name for alias in node.names]))
    return found


def _edges(package: str) -> dict[str, set[str]]:
    imports = _imports(package)
    graph = {module: set() for module in imports}
    for module, entries in imports.items():
        for target, names in entries:
            candidates = [f"{target}.{name}" for name in names if f"{target}.{name}" in imports] or [target]
            graph[module] |= {c for c in candidates if c in imports and c != module}
    return graph


def test_no_module_under_edgeloop_imports_the_cli_entry_point():
    assert [m for m, targets in _edges("edgeloop").items() if "edgeloop.cli" in targets] == []


def test_edgeloop_has_no_import_cycle():
    graph = _edges("edgeloop")
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, f"import cycle: {' -> '.join(path[path.index(module):] + [module])}"
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, path + [module])
        done.add(module)

    for module in graph:
        visit(module, [])


def test_edgeloop_uses_only_the_trainers_public_surface():
    for module, entries in _imports("edgeloop").items():
        for target, names in entries:
            if target.split(".")[0] == "trainer_job":
                assert target == "trainer_job" and set(names) <= set(trainer_job.__all__), (module, target, names)


def test_the_trainers_public_names_are_its_own_and_importing_the_package_loads_no_training_code():
    from trainer_job import augment, pipeline, run

    assert trainer_job.run_training is run.main
    assert trainer_job.RUN_STAGES == run.STAGES
    assert (trainer_job.load_train_config, trainer_job.save_train_config) == (run.load_train_config, run.save_train_config)
    assert (trainer_job.TrainConfig, trainer_job.AugmentConfig) == (pipeline.TrainConfig, augment.AugmentConfig)
    probe = "import sys, trainer_job; print(sorted(m for m in sys.modules if m.startswith('trainer_job.')))"
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_stack_keeps_the_names_callers_import_each_from_the_module_doing_that_job():
    for name in stack.__all__:
        assert hasattr(stack, name), name
    assert stack.StackState is state.StackState and stack.load_state is state.load_state
    assert stack.down is processes.down and stack.pid_alive is processes.pid_alive
    assert stack.PUSH_ROUTES is wiring.PUSH_ROUTES and stack.FIRESTORE_TRIGGERS is wiring.FIRESTORE_TRIGGERS
    assert stack.kill_component is faults.kill_component and stack.start_component is faults.start_component

"""infra/terraform, checked statically against the code it deploys.

The Google providers cannot be downloaded here (no terraform validate or plan),
so every .tf file is parsed with python-hcl2 and cross-checked with the code:
the functions and their triggers (functions/main.py,
edgeloop/localstack/stack.py), the settings they read
(shared/config.py), the topic and delivery defaults, the rules files, the
source archive and its requirements, the log events alerted on. checkov then
scans the configuration (and trainer_job/Dockerfile once it exists): every
finding is fixed or suppressed inline with a written reason.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions
from pydantic import BaseModel

from edgeloop.localstack import stack
from shared import events
from shared.config import Settings

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "infra" / "terraform"
EVENT_FUNCTION = "./modules/event_function"
TOPIC_MODULE = "./modules/pubsub_topic_with_dlq"
SCHEDULE_MODULE = "./modules/model_schedule"
MODULE_DIRECTORIES = [".", "modules/event_function", "modules/pubsub_topic_with_dlq", "modules/model_schedule"]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"

# Settings the deployed functions deliberately leave at shared/config.py's
# defaults (an operator may still set any of them through var.settings_overrides).
# A key ending in "__" covers every field of that group.
DEFAULTED = {
    "EDGELOOP_THRESHOLDS__": "business policy: the defaults in shared/config.py are the product's; tune via settings_overrides",
    "EDGELOOP_DELIVERY__": "read only by the local stack to provision its subscriptions; Terraform configures the real ones from var.delivery, whose defaults are compared with Settings().delivery below",
    "EDGELOOP_PORTS__": "local stack ports; nothing listens on them in Cloud Functions",
    "EDGELOOP_HOST": "local stack bind address",
    "EDGELOOP_STACK_DIR": "local stack state directory",
    "EDGELOOP_IMAGES__": "upload limits are product policy; the byte limit is checked against storage.rules in tests/integration/test_security_rules.py",
    "EDGELOOP_MAX_IMAGE_BYTES": "upload size policy (older name of images.max_bytes); checked against storage.rules",
    "EDGELOOP_TRAINING__LOCK_TTL_S": "run-lock policy, not deployment-specific",
    "EDGELOOP_TRAINING__LAUNCH_GRACE_S": "run-lock policy: how soon a run whose launch died frees its lock",
    "EDGELOOP_TRAINING__COOLDOWN_S": "retrain cooldown policy, not deployment-specific",
    "EDGELOOP_TRAINING__FIELD_HOLDOUT_WAIT_S": "retrain policy (off by default): how long a drift retrain may wait for field evidence; tune via settings_overrides",
    "EDGELOOP_GATE__": "quality-gate policy the trainer applies; the defaults are the product's, tune via settings_overrides",
    "EDGELOOP_RELEASE__": "rollout policy; the defaults are the product's, tune via settings_overrides",
    "EDGELOOP_SIGNING_KEY": "key material is never in any environment: the trainer reads it from Secret Manager by EDGELOOP_SIGNING_KEY_SECRET (trainer.tf); no function signs",
    "EDGELOOP_CLIENT__": "device-side client_sdk defaults (capture policy, budgets, retries); no function reads them",
    "EDGELOOP_CACHING__": "how long a function instance keeps a model's definition and the causes it asked for; the defaults suit any deployment (README: Models)",
    "EDGELOOP_WEB__": "edgeloop web's port and the browser app's poll period on the local stack; no function reads them",
}

# Only launch_training starts the trainer; the other functions never read these.
# Variables Terraform sets that the code is about to read (the contract with the
# issue that adds them). Remove an entry once shared/config.py has the field.
# Only launch_training starts trainers, so only it needs the launcher settings.
LAUNCHER_SETTINGS = {
    "EDGELOOP_TRAINING__LAUNCHER",
    "EDGELOOP_TRAINING__REGION",
    "EDGELOOP_TRAINING__CLOUD_RUN_JOB",
    "EDGELOOP_TRAINING__TRAINER_IMAGE",
    "EDGELOOP_TRAINING__VERTEX_MACHINE_TYPE",
    "EDGELOOP_TRAINING__VERTEX_SERVICE_ACCOUNT",
    "EDGELOOP_TRAINING__VERTEX_ACCELERATOR_TYPE",
    "EDGELOOP_TRAINING__VERTEX_ACCELERATOR_COUNT",
    "EDGELOOP_SIGNING_KEY_SECRET",  # passed on to every trainer it starts (shared.config.TRAINER_SETTINGS)
}

PENDING_SETTINGS: dict[str, str] = {}

# Log events alerted on that no code writes yet, with the issue that will.
PENDING_EVENTS: dict[str, str] = {}  # alerted events no code logs yet, with the issue that will
ALERTED_EVENTS = {"model_rolled_back", "candidate_rejected", "drift_detected", "malformed_event", "success_rate_dropped",
                  "run_failed"}

# Emulator (legacy) Firestore trigger types -> the Eventarc type used in production.
FIRESTORE_EVENT_TYPES = {
    "providers/cloud.firestore/eventTypes/document.create": "google.cloud.firestore.document.v1.created",
    "providers/cloud.firestore/eventTypes/document.update": "google.cloud.firestore.document.v1.updated",
    "providers/cloud.firestore/eventTypes/document.delete": "google.cloud.firestore.document.v1.deleted",
    "providers/cloud.firestore/eventTypes/document.write": "google.cloud.firestore.document.v1.written",
}

# Third-party imports reachable from functions/main.py that
# functions/requirements.txt deliberately does not list.
NOT_IN_FUNCTION_REQUIREMENTS = {
    "google-auth": "installed with every google-cloud-* client (imported for AnonymousCredentials against emulators)",
    "google-api-core": "installed with every google-cloud-* client (imported for its exception types)",
    "scikit-learn": "shared/digits.py loads the seed dataset for the local demo and the trainer, never inside a function",
}

# Roles that may be bound at project level, and why no narrower resource exists.
PROJECT_LEVEL_ROLES = {
    "roles/datastore.user": "Firestore IAM is project-level; every binding carries a condition naming the (default) database",
    "roles/eventarc.eventReceiver": "Eventarc requires it of a trigger identity and offers it at project level only",
    "roles/aiplatform.user": "Vertex AI CustomJobs do not exist before the launcher creates them",
    "roles/aiplatform.viewer": "the tick reads CustomJobs the launcher created; they have no IAM of their own",
    "roles/logging.logWriter": "function builds write their logs to the project",
    "roles/artifactregistry.writer": "Cloud Functions creates the gcf-artifacts repository itself, on first deploy",
}


# --- parsing ----------------------------------------------------------------------

_OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)


def _tf_files() -> list[Path]:
    return sorted(p for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts)


class Module:
    """All blocks of one Terraform module directory, merged across its files."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.resources: dict[tuple[str, str], dict] = {}
        self.data: dict[tuple[str, str], dict] = {}
        self.modules: dict[str, dict] = {}
        self.variables: dict[str, dict] = {}
        self.outputs: dict[str, dict] = {}
        self.locals: dict[str, Any] = {}
        self.terraform: list[dict] = []
        for path in sorted(directory.glob("*.tf")):
            parsed = _parse(path)
            for kind, store in (("resource", self.resources), ("data", self.data)):
                for block in parsed.get(kind, []):
                    for type_, named in block.items():
                        for name, body in named.items():
                            assert (type_, name) not in store, f"{type_}.{name} declared twice in {directory}"
                            store[(type_, name)] = body
            for kind, store in (("module", self.modules), ("variable", self.variables), ("output", self.outputs)):
                for block in parsed.get(kind, []):
                    store.update(block)
            for block in parsed.get("locals", []):
                self.locals.update(block)
            self.terraform.extend(parsed.get("terraform", []))

    def resource(self, type_: str, name: str) -> dict:
        assert (type_, name) in self.resources, f"{self.directory.name}: no resource {type_}.{name}"
        return self.resources[(type_, name)]

    def resources_of(self, type_: str) -> dict[str, dict]:
        return {name: body for (t, name), body in self.resources.items() if t == type_}

    def local_keys(self, expression: Any) -> set[str]:
        """Keys of a map expression built from literal maps and locals (merge(), local.x)."""
        if isinstance(expression, dict):
            return set(expression)
        keys: set[str] = set()
        for name in re.findall(r"\blocal\.([A-Za-z_][A-Za-z0-9_]*)", str(expression)):
            keys |= self.local_keys(self.locals[name])
        return keys

    def resolve_path(self, expression: str) -> Path:
        """The file a file("...") expression reads, with local.* and path.module substituted."""
        match = re.search(r'file\("(.+?)"\)', expression)
        assert match, f"not a file() expression: {expression}"
        path = match.group(1)
        for _ in range(5):
            path = re.sub(r"\$\{local\.([A-Za-z0-9_]+)\}", lambda m: str(self.locals[m.group(1)]), path)
            path = path.replace("${path.module}", str(self.directory))
        return Path(os.path.normpath(path))


@lru_cache(maxsize=None)
def _parse(path: Path) -> dict:
    with open(path) as handle:
        return hcl2.load(handle, serialization_options=_OPTIONS)


@lru_cache(maxsize=None)
def module(relative: str = ".") -> Module:
    return Module((TERRAFORM / relative).resolve())


def root() -> Module:
    return module(".")


_EACH_VALUE = re.compile(r"\beach\.value\.(\w+)")
_NULL_GUARD = re.compile(r"\$\{each\.value\.(\w+) == null \? null : (.*)\}", re.DOTALL)


def _instance_argument(value: Any, key: str, entry: dict) -> Any:
    """One argument of a for_each module call as instance `key` sees it: each.key and
    each.value(.X) substituted. None is unset: the module's default applies. Reads
    the forms the root module uses, "${each.value}", "${each.value.X}",
    "${each.value.X == null ? null : EXPR}", and each.key or each.value.X used as
    a reference inside an expression; anything else fails the assertion below."""
    if not isinstance(value, str):
        return value
    if value == "${each.value}":
        return entry
    whole = re.fullmatch(r"\$\{each\.value\.(\w+)\}", value)
    if whole:
        return entry[whole.group(1)]
    if value == "${each.key}":
        return key
    guard = _NULL_GUARD.fullmatch(value)
    if guard:
        if entry[guard.group(1)] is None:
            return None
        value = "${" + guard.group(2) + "}"

    def literal(match: re.Match) -> str:
        item = entry[match.group(1)]
        assert isinstance(item, str), f"each.value.{match.group(1)} is used in an expression but is {item!r}"
        reference = re.fullmatch(r"\$\{([\w.]+)\}", item)  # e.g. ${var.x.y}
        if reference:
            return reference.group(1)
        assert "${" not in item, f"each.value.{match.group(1)} is neither a plain string nor a reference: {item!r}"
        return json.dumps(item)

    value = _EACH_VALUE.sub(literal, value).replace("each.key", json.dumps(key))
    assert "each." not in value, value
    return value


def for_each_calls(source: str) -> dict[str, dict]:
    """Root calls of a module source, one per for_each instance key, each with its
    arguments as that instance receives them (unset ones left out) and "_module",
    the instance address."""
    calls = {}
    for name, body in root().modules.items():
        if body["source"] != source:
            continue
        expression = body.get("for_each")
        assert expression, f"module {name}: expected a for_each over a local map"
        local = re.fullmatch(r"\$\{local\.(\w+)\}", expression)
        assert local, f"module {name}: for_each {expression!r} is not a local map"
        for key, entry in root().locals[local.group(1)].items():
            call = {
                argument: _instance_argument(value, key, entry)
                for argument, value in body.items()
                if argument not in ("source", "for_each", "depends_on")
            }
            calls[key] = {argument: value for argument, value in call.items() if value is not None}
            calls[key]["_module"] = f'{name}["{key}"]'
    return calls


def function_modules() -> dict[str, dict]:
    """Root calls of the event_function module, by entry point (one per for_each instance)."""
    return {call["entry_point"]: call for call in for_each_calls(EVENT_FUNCTION).values()}


def optional_defaults(type_expression: str) -> dict[str, str]:
    """attribute -> default of an object({... = optional(type, default)}) type."""
    return {
        name: default.strip('"')
        for name, default in re.findall(r'(\w+)\s*=\s*optional\(\s*\w+\s*,\s*("[^"]*"|[0-9.]+|true|false)\s*\)', type_expression)
    }


def settings_variables(model: type[BaseModel] = Settings, prefix: str = "EDGELOOP_") -> set[str]:
    """Every environment variable a Settings field is read from (nested fields joined with __)."""
    names = set()
    for field_name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= settings_variables(annotation, f"{prefix}{field_name.upper()}__")
        else:
            names.add(f"{prefix}{field_name.upper()}")
    return names


def defaulted(variable: str) -> bool:
    return any(variable == key or (key.endswith("__") and variable.startswith(key)) for key in DEFAULTED)


def cloud_event_functions() -> set[str]:
    tree = ast.parse((REPO / "functions" / "main.py").read_text())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if ast.unparse(decorator) == "functions_framework.cloud_event":
                    found.add(node.name)
    return found


# --- the files ---------------------------------------------------------------------

@pytest.mark.parametrize("path", _tf_files(), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_terraform_file_parses(path):
    assert _parse(path), f"{path} is empty"


def test_the_layout_follows_terraform_google_modules():
    for directory in [TERRAFORM, *sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())]:
        for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
            assert (directory / name).is_file(), f"{directory.relative_to(REPO)} has no {name}"
    assert (TERRAFORM / "terraform.tfvars.example").is_file()


# Addresses the for_each refactoring changed: an existing deployment's state moves
# to the new address (moved.tf) instead of the resource being destroyed and recreated.
MOVED = {
    "module.on_upload": 'module.event_function["on_upload"]',
    "module.on_feedback": 'module.event_function["on_feedback"]',
    "module.check_drift": 'module.event_function["check_drift"]',
    "module.launch_training": 'module.event_function["launch_training"]',
    "module.topic_storage_events": 'module.topic["storage_events"]',
    "module.topic_retrain_requests": 'module.topic["retrain_requests"]',
    "module.topic_drift_checks": 'module.topic["drift_checks"]',
    "google_cloud_scheduler_job.drift_check": 'module.schedule["drift_check"].google_cloud_scheduler_job.this',
    "google_cloud_scheduler_job.weekly_retrain": 'module.schedule["weekly_retrain"].google_cloud_scheduler_job.this',
    "google_firebaserules_ruleset.firestore": 'google_firebaserules_ruleset.rules["firestore"]',
    "google_firebaserules_ruleset.storage": 'google_firebaserules_ruleset.rules["storage"]',
    "google_firebaserules_release.firestore": 'google_firebaserules_release.rules["firestore"]',
    "google_firebaserules_release.storage": 'google_firebaserules_release.rules["storage"]',
    "google_storage_bucket_iam_member.on_upload_quarantines": 'google_storage_bucket_iam_member.on_upload_quarantines["on_upload"]',
}


def test_moved_resources_keep_their_state_and_their_names():
    moved = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        for block in _parse(path).get("moved", []):
            source = block["from"].removeprefix("${").removesuffix("}")
            assert source not in moved, f"{source} moved twice"
            moved[source] = block["to"].removeprefix("${").removesuffix("}")
    assert moved == MOVED
    # The instances keep the names the separate blocks gave them: a new name would
    # replace the function (and its push subscription) or the job all the same.
    def hyphenated(expression: str) -> str:
        match = re.fullmatch(r'edgeloop-\$\{replace\("(\w+)", "_", "-"\)\}', expression)
        assert match, expression
        return "edgeloop-" + match.group(1).replace("_", "-")

    names = {entry_point: hyphenated(call["name"]) for entry_point, call in function_modules().items()}
    assert names == {"on_upload": "edgeloop-on-upload", "on_feedback": "edgeloop-on-feedback",
                     "check_drift": "edgeloop-check-drift", "launch_training": "edgeloop-launch-training"}
    prefixes = {schedule: hyphenated(call["name_prefix"]) for schedule, call in for_each_calls(SCHEDULE_MODULE).items()}
    assert prefixes == {"drift_check": "edgeloop-drift-check", "weekly_retrain": "edgeloop-weekly-retrain"}
    job = module("modules/model_schedule").resource("google_cloud_scheduler_job", "this")
    assert job["name"] == "${var.name_prefix}-${each.key}"


@pytest.mark.parametrize("directory", MODULE_DIRECTORIES)
def test_provider_versions_are_bounded_below_and_above(directory):
    blocks = module(directory).terraform
    assert blocks, f"{directory}: no terraform block"
    required = {}
    for block in blocks:
        for providers in block.get("required_providers", []):
            required.update(providers)
        version = block.get("required_version", "")
        assert ">=" in version and "<" in version.replace("<=", "<"), f"{directory}: unbounded required_version {version!r}"
    assert "google" in required, f"{directory}: google provider not required"
    for name, spec in required.items():
        assert ">=" in spec["version"] and re.search(r"<\s*\d", spec["version"]), f"{directory}: {name} version {spec['version']!r} is not bounded"
    if directory == ".":
        assert {"google", "google-beta", "archive"} <= set(required)


@pytest.mark.parametrize("directory", MODULE_DIRECTORIES)
def test_every_variable_is_typed_and_described(directory):
    for name, body in module(directory).variables.items():
        assert body.get("type"), f"{directory}: variable {name} has no type"
        assert len(body.get("description", "")) > 10, f"{directory}: variable {name} has no description"
    for name, body in module(directory).outputs.items():
        assert body.get("description"), f"{directory}: output {name} has no description"


def test_root_variables_with_free_form_values_are_validated():
    unvalidated = {
        name for name, body in root().variables.items()
        if not body.get("validation") and body["type"] not in ("bool",)
    }
    assert unvalidated <= {"bucket_location", "firestore_location", "create_firestore_database"}, unvalidated


@pytest.mark.parametrize("directory", MODULE_DIRECTORIES)
def test_readme_lists_every_input_and_output(directory):
    readme = (TERRAFORM / directory / "README.md").read_text()
    mod = module(directory)
    for name in [*mod.variables, *mod.outputs]:
        assert f"`{name}`" in readme, f"{directory}/README.md does not list `{name}`"


def test_the_tfvars_example_sets_only_declared_variables_and_every_required_one():
    example = hcl2.load(open(TERRAFORM / "terraform.tfvars.example"), serialization_options=_OPTIONS)
    declared = root().variables
    assert set(example) <= set(declared), set(example) - set(declared)
    required = {name for name, body in declared.items() if "default" not in body}
    assert required <= set(example), f"terraform.tfvars.example misses required {required - set(example)}"


# --- functions and triggers --------------------------------------------------------

def test_every_cloud_event_function_is_deployed_with_its_entry_point():
    deployed = function_modules()
    assert cloud_event_functions(), "found no functions_framework.cloud_event handler in functions/main.py"
    assert set(deployed) == cloud_event_functions(), (
        f"functions/main.py handlers {sorted(cloud_event_functions())} vs deployed entry points {sorted(deployed)}"
    )
    assert set(stack.FUNCTIONS) == set(deployed)
    for entry_point, call in deployed.items():
        assert call["_module"] == f'event_function["{entry_point}"]', f"module for {entry_point} is {call['_module']}"


def test_the_function_module_builds_the_entry_point_with_the_pinned_python():
    function = module("modules/event_function").resource("google_cloudfunctions2_function", "this")
    build = function["build_config"][0]
    assert build["entry_point"] == "${var.entry_point}"
    assert build["runtime"] == "${var.runtime}"
    assert build["source"][0]["storage_source"][0]["object"] == "${var.source_archive.object}"
    for call in function_modules().values():
        assert call["runtime"] == "${var.function_runtime}"
        assert call["source_archive"] == "${local.functions_source}"
    assert root().variables["function_runtime"]["default"] == "python311"
    requires_python = re.search(r'requires-python\s*=\s*">=3\.(\d+)', (REPO / "pyproject.toml").read_text()).group(1)
    assert root().variables["function_runtime"]["default"] == f"python3{requires_python}"
    service = function["service_config"][0]
    assert service["max_instance_count"] == "${var.limits.max_instances}"
    assert service["environment_variables"] == "${var.environment_variables}"
    assert service["ingress_settings"] == "ALLOW_INTERNAL_ONLY"


@pytest.mark.parametrize("topic_field, entry_point", sorted(stack.PUSH_ROUTES.items()))
def test_each_topic_pushes_to_the_function_the_local_stack_routes_it_to(topic_field, entry_point):
    call = function_modules()[entry_point]
    trigger = call.get("pubsub_trigger", "")
    assert f'module.topic["{topic_field}"].topic_id' in trigger, f"{entry_point} is not fed by {topic_field}: {trigger}"
    assert f'module.topic["{topic_field}"].dead_letter_topic_id' in trigger
    assert "local.push_delivery" in trigger
    assert "firestore_trigger" not in call
    topic = for_each_calls(TOPIC_MODULE)[topic_field]
    assert topic["_module"] == f'topic["{topic_field}"]'
    assert topic["name"] == f"${{var.topics.{topic_field}}}"
    assert topic["dead_letter_suffix"] == "${var.topics.dead_letter_suffix}"


def test_push_subscriptions_have_a_dead_letter_topic_bounded_retries_and_authenticated_delivery():
    subscription = module("modules/event_function").resource("google_pubsub_subscription", "push")
    assert subscription["dead_letter_policy"][0] == {
        "dead_letter_topic": "${var.pubsub_trigger.dead_letter_topic_id}",
        "max_delivery_attempts": "${var.pubsub_trigger.max_delivery_attempts}",
    }
    assert subscription["retry_policy"][0] == {
        "minimum_backoff": "${var.pubsub_trigger.min_backoff_s}s",
        "maximum_backoff": "${var.pubsub_trigger.max_backoff_s}s",
    }
    push = subscription["push_config"][0]
    assert "service_config[0].uri" in push["push_endpoint"]
    assert push["oidc_token"][0]["service_account_email"] == "${var.trigger_service_account_email}"
    delivery = root().locals["push_delivery"]
    for key in ("max_delivery_attempts", "ack_deadline_s", "min_backoff_s", "max_backoff_s"):
        assert delivery[key] == f"${{var.delivery.{key}}}"


@pytest.mark.parametrize("entry_point", sorted(stack.FIRESTORE_TRIGGERS))
def test_firestore_triggers_match_the_local_stack(entry_point):
    local_type, pattern = stack.FIRESTORE_TRIGGERS[entry_point]
    call = function_modules()[entry_point]
    trigger = call["firestore_trigger"]
    assert "pubsub_trigger" not in call
    assert trigger["event_type"] == FIRESTORE_EVENT_TYPES[local_type]
    assert trigger["event_type"] in events.FIRESTORE_EVENT_TYPES, "the decoder must accept the production event type"
    assert trigger["document"] == pattern
    assert trigger["database"] == "(default)"
    assert trigger["region"] == "${var.firestore_location}"

    event_trigger = module("modules/event_function").resource("google_cloudfunctions2_function", "this")["dynamic"][0]["event_trigger"]
    content = event_trigger["content"][0]
    assert content["event_type"] == "${event_trigger.value.event_type}"
    assert content["retry_policy"] == "RETRY_POLICY_RETRY"
    filters = {f["attribute"]: f for f in content["event_filters"]}
    assert filters["document"]["operator"] == "match-path-pattern"
    assert filters["document"]["value"] == "${event_trigger.value.document}"
    assert filters["database"]["value"] == "${event_trigger.value.database}"


def test_every_function_has_exactly_one_trigger():
    for entry_point, call in function_modules().items():
        assert ("pubsub_trigger" in call) != ("firestore_trigger" in call), entry_point
    routed = set(stack.PUSH_ROUTES.values()) | set(stack.FIRESTORE_TRIGGERS)
    assert routed == set(function_modules()), "a deployed function has no trigger in the local stack, or the reverse"


def test_the_bucket_notifies_storage_events_as_the_decoder_expects():
    notification = root().resource("google_storage_notification", "object_finalize")
    assert notification["payload_format"] == events.GCS_PAYLOAD_FORMAT
    assert notification["event_types"] == ["OBJECT_FINALIZE"]
    assert set(notification["event_types"]) <= events.GCS_EVENT_TYPES
    assert notification["topic"] == '${module.topic["storage_events"].topic_id}'
    assert notification["bucket"] == "${google_storage_bucket.data.name}"


def test_schedules_publish_to_the_drift_and_retrain_topics():
    schedules = for_each_calls(SCHEDULE_MODULE)
    assert set(schedules) == {"drift_check", "weekly_retrain"}
    assert schedules["drift_check"]["topic_id"] == '${module.topic["drift_checks"].topic_id}'
    assert schedules["weekly_retrain"]["topic_id"] == '${module.topic["retrain_requests"].topic_id}'
    assert schedules["drift_check"]["models"] == "${var.schedules.enable_drift ? var.models : []}"
    assert schedules["weekly_retrain"]["models"] == "${var.schedules.enable_retrain ? var.models : []}"
    assert schedules["drift_check"]["schedule"] == "${var.schedules.drift_check}"
    assert schedules["weekly_retrain"]["schedule"] == "${var.schedules.weekly_retrain}"
    for call in schedules.values():
        assert call["time_zone"] == "${var.schedules.time_zone}"
    job = module("modules/model_schedule").resource("google_cloud_scheduler_job", "this")
    data = job["pubsub_target"][0]["data"]
    assert "model = each.key" in data and 'reason = "schedule"' in data.replace('\\"', '"')
    assert job["for_each"] == "${toset(var.models)}"
    assert job["pubsub_target"][0]["topic_name"] == "${var.topic_id}"


# --- configuration -----------------------------------------------------------------

def test_topic_defaults_and_dead_letter_suffix_agree_with_the_settings():
    declared = optional_defaults(root().variables["topics"]["type"])
    assert declared == Settings().topics.model_dump()
    topic_module = module("modules/pubsub_topic_with_dlq")
    assert topic_module.variables["dead_letter_suffix"]["default"] == Settings().topics.dead_letter_suffix
    assert topic_module.resource("google_pubsub_topic", "dead_letter")["name"] == "${var.name}${var.dead_letter_suffix}"
    keeper = topic_module.resource("google_pubsub_subscription", "dead_letter")
    assert keeper["topic"] == "${google_pubsub_topic.dead_letter.id}", "dead letters would be dropped: no subscription keeps them"


def test_delivery_defaults_agree_with_the_settings():
    declared = {k: int(v) for k, v in optional_defaults(root().variables["delivery"]["type"]).items()}
    assert declared == Settings().delivery.model_dump()


def test_the_bucket_and_models_reach_the_code_through_its_settings():
    env = root().locals["settings_env"]
    assert env["EDGELOOP_BUCKET"] == "${google_storage_bucket.data.name}"
    assert env["EDGELOOP_PROJECT_ID"] == "${var.project_id}"
    assert env["EDGELOOP_MODELS"] == "${jsonencode(var.models)}"
    for field in ("storage_events", "retrain_requests", "drift_checks"):
        assert env[f"EDGELOOP_TOPICS__{field.upper()}"] == f'${{module.topic["{field}"].topic_name}}'
    assert env["EDGELOOP_TOPICS__DEAD_LETTER_SUFFIX"] == "${var.topics.dead_letter_suffix}"
    # Settings parse EDGELOOP_MODELS as JSON, which is what jsonencode() writes.
    assert Settings(models=json.loads(json.dumps(["digits", "fashion"]))).models == ("digits", "fashion")
    assert root().variables["models"]["default"] == list(Settings().models)


@pytest.mark.parametrize("entry_point", sorted(stack.FUNCTIONS))
def test_every_setting_the_code_reads_is_set_or_deliberately_defaulted(entry_point):
    env = root().local_keys(function_modules()[entry_point]["environment_variables"])
    missing = sorted(
        name for name in settings_variables()
        if name not in env
        and not defaulted(name)
        and not (name in LAUNCHER_SETTINGS and entry_point != "launch_training")
    )
    assert not missing, (
        f"{entry_point} reads {missing} (shared/config.py) but Terraform neither sets them nor lists them as "
        "defaulted: set them in infra/terraform (locals.settings_env / launcher_env) or add them to DEFAULTED "
        "in tests/infra/test_terraform.py with the reason"
    )
    launcher = root().local_keys("local.launcher_env")
    assert (launcher <= env) == (entry_point == "launch_training"), "only launch_training starts the trainer"


def _trainer_job_container() -> dict:
    return root().resource("google_cloud_run_v2_job", "trainer")["template"][0]["template"][0]["containers"][0]


def _trainer_job_env() -> set[str]:
    job = _trainer_job_container()
    return {e["name"] for e in job.get("env", [])} | root().local_keys(job["dynamic"][0]["env"]["for_each"])


def test_every_variable_terraform_sets_is_one_the_code_reads():
    known = settings_variables()
    env = root().local_keys("local.component_env") | root().local_keys("local.launcher_env")
    job_env = _trainer_job_env()
    unknown = sorted(name for name in env | job_env if name not in known and name not in PENDING_SETTINGS)
    assert not unknown, f"Terraform sets {unknown}, which shared/config.py does not read (a typo, or add it to PENDING_SETTINGS)"
    assert root().local_keys("local.settings_env") <= job_env, "the trainer job must run with the same settings"


def test_trainers_get_the_signing_keys_secret_name_and_never_the_key():
    """Cloud Run and Vertex alike: the job carries the name of the secret's version; the trainer reads it."""
    mod = root()
    version = "${google_secret_manager_secret.signing_key.id}/versions/latest"
    assert mod.locals["signing_key_version"] == version
    # The Cloud Run job (also when started by hand) and launch_training, which passes it to every job it starts.
    job_env = mod.locals["trainer_job_env"]
    assert job_env["EDGELOOP_SIGNING_KEY_SECRET"] == "${local.signing_key_version}"
    assert job_env["EDGELOOP_TRAINING__LAUNCHER"] == "cloud_run_job"  # a trainer there never falls back to a dev key
    assert "local.trainer_job_env" in str(_trainer_job_container()["dynamic"][0]["env"]["for_each"])
    assert mod.locals["launcher_env"]["EDGELOOP_SIGNING_KEY_SECRET"] == "${local.signing_key_version}"
    # No Secret Manager reference resolved into an environment, no key variable, anywhere.
    for path in _tf_files():
        text = path.read_text()
        assert "secret_key_ref" not in text and "value_source" not in text, f"{path.name} injects a secret into an env"
        assert not re.search(r'\bEDGELOOP_SIGNING_KEY\b(?!_)\s*=', text), f"{path.name} sets the key as a variable"
    assert "EDGELOOP_SIGNING_KEY" not in _trainer_job_env()
    overrides = mod.variables["settings_overrides"]["validation"]
    assert any('"EDGELOOP_SIGNING_KEY"' in str(rule["condition"]) for rule in overrides), \
        "settings_overrides must refuse the key itself"
    # Only the trainer's identity reads it (one secret, not the project); both backends run as that identity.
    trainer = 'google_service_account.component["trainer"]'
    job = mod.resource("google_cloud_run_v2_job", "trainer")["template"][0]["template"][0]
    assert job["service_account"] == f"${{{trainer}.email}}"
    assert mod.locals["launcher_env"]["EDGELOOP_TRAINING__VERTEX_SERVICE_ACCOUNT"] == f"${{{trainer}.email}}"
    readers = {account for account, roles in _granted_roles().items()
               if any(role == "roles/secretmanager.secretAccessor" for role, _ in roles)}
    assert readers == {"component:trainer"}
    assert not any(type_.startswith("google_project_iam") and "secretmanager" in str(body.get("role", ""))
                   for (type_, _), body in mod.resources.items())


# --- rules, source archive, requirements --------------------------------------------

def test_rules_releases_read_the_files_the_local_stack_loads():
    ruleset = root().resource("google_firebaserules_ruleset", "rules")
    assert _for_each_keys(root(), ruleset["for_each"]) == ["firestore", "storage"]
    rules_file = ruleset["source"][0]["files"][0]
    files = {key: root().resolve_path(rules_file["content"].replace("${each.key}", key)) for key in ("firestore", "storage")}
    assert files["firestore"] == stack.FIRESTORE_RULES.resolve()
    assert files["storage"] == (REPO / "infra/firebase/storage.rules").resolve()
    assert rules_file["name"] == "${each.key}.rules"
    release = root().resource("google_firebaserules_release", "rules")
    assert release["for_each"] == "${local.rules_releases}" and release["name"] == "${each.value}"
    assert root().locals["rules_releases"] == {
        "firestore": "cloud.firestore",
        "storage": "firebase.storage/${google_storage_bucket.data.name}",
    }
    assert "google_firebaserules_ruleset.rules[each.key].name" in release["ruleset_name"]
    assert release["lifecycle"][0]["replace_triggered_by"] == ["${google_firebaserules_ruleset.rules[each.key]}"]
    # Each release waits for what it protects (the database; the bucket's Firebase link).
    assert {"${google_firestore_database.default}", "${google_firebase_storage_bucket.data}"} <= set(release["depends_on"])


def _archive_files() -> dict[str, Path]:
    """archive name -> source file, as data.archive_file.functions_source builds it."""
    archive = root().data[("archive_file", "functions_source")]
    files = {s["filename"]: root().resolve_path(s["content"]) for s in archive["source"]}
    dynamic = archive["dynamic"][0]["source"]
    base_expr, pattern = re.match(r'\$\{fileset\("(.+?)", "(.+?)"\)\}', dynamic["for_each"]).groups()
    base = root().resolve_path(f'file("{base_expr}")')
    assert dynamic["content"][0]["filename"] == "shared/${source.value}"
    for path in base.glob(pattern.replace("**/", "**/")):
        if "__pycache__" not in path.parts:
            files[f"shared/{path.relative_to(base)}"] = path
    return files


def test_the_source_archive_holds_main_py_at_its_root_the_requirements_and_shared():
    files = _archive_files()
    assert files["main.py"] == REPO / "functions" / "main.py"
    assert files["requirements.txt"] == REPO / "functions" / "requirements.txt"
    assert files["shared/__init__.py"] == REPO / "shared" / "__init__.py"
    assert {name for name in files if name.startswith("shared/")} == {
        f"shared/{p.relative_to(REPO / 'shared')}" for p in (REPO / "shared").rglob("*.py") if "__pycache__" not in p.parts
    }
    name = root().resource("google_storage_bucket_object", "functions_source")["name"]
    assert "data.archive_file.functions_source.output_sha256" in name, "the archive must be named by content hash"


def test_the_archive_imports_on_its_own_without_the_trainer_or_tensorflow():
    with tempfile.TemporaryDirectory() as tmp:
        for name, source in _archive_files().items():
            target = Path(tmp) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
        probe = (
            "import sys, main\n"
            f"handlers = {sorted(cloud_event_functions())!r}\n"
            "assert all(callable(getattr(main, h)) for h in handlers)\n"
            "assert main.__file__.startswith(sys.argv[1]), main.__file__\n"
            "import shared; assert shared.__file__.startswith(sys.argv[1]), shared.__file__\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('trainer_job', 'tensorflow', 'client_sdk', 'edgeloop', 'functions'))\n"
            "assert not bad, bad\n"
        )
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        result = subprocess.run([sys.executable, "-c", probe, tmp], cwd=tmp, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]


def _requirements(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


@lru_cache(maxsize=1)
def _file_to_distribution() -> dict[str, str]:
    owners = {}
    for dist in importlib.metadata.distributions():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
        for file in dist.files or []:
            if file.suffix in (".py", ".so") or file.name == "__init__.py":
                owners[str(Path(dist.locate_file(file)).resolve())] = name
    return owners


def _distribution_of(module_name: str) -> str | None:
    """The installed distribution providing a module, or None for the stdlib and the repo itself."""
    top = module_name.split(".")[0]
    if top in sys.stdlib_module_names or top in ("shared", "functions", "__future__"):
        return None
    spec = importlib.util.find_spec(module_name)
    if spec is None:
        return "?" + module_name
    origins = [spec.origin] if spec.origin not in (None, "namespace") else []
    origins += [str(Path(p) / "__init__.py") for p in (spec.submodule_search_locations or [])]
    for origin in origins:
        owner = _file_to_distribution().get(str(Path(origin).resolve()))
        if owner:
            return owner
    return "?" + module_name


def _imported_names(path: Path) -> list[str]:
    """Absolute module names a file imports, at any depth (lazy imports run at run time too)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                try:
                    names.append(full if importlib.util.find_spec(full) else node.module)
                except (ImportError, ValueError):
                    names.append(node.module)
    return names


def _runtime_files() -> list[Path]:
    """functions/main.py and every shared/ module it reaches through imports: what runs in a function."""
    pending, seen = [REPO / "functions" / "main.py"], []
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.append(path)
        for name in _imported_names(path):
            parts = name.split(".")
            if parts[0] != "shared":
                continue
            candidates = [REPO / "shared" / "__init__.py"]
            if len(parts) > 1:
                candidates += [REPO.joinpath(*parts).with_suffix(".py"), REPO.joinpath(*parts, "__init__.py")]
            pending += [c for c in candidates if c.exists()]
    return seen


def _third_party_imports() -> dict[str, set[str]]:
    """distribution -> runtime files of the functions importing it."""
    found: dict[str, set[str]] = {}
    for path in _runtime_files():
        for name in _imported_names(path):
            dist = _distribution_of(name)
            if dist:
                found.setdefault(dist, set()).add(str(path.relative_to(REPO)))
    return found


def test_function_requirements_are_pinned_like_the_runtime_set():
    functions_pins = _requirements(REPO / "functions" / "requirements.txt")
    runtime_pins = _requirements(REPO / "requirements.txt")
    for name, version in functions_pins.items():
        assert name in runtime_pins, f"functions/requirements.txt pins {name}, which requirements.txt does not"
        assert version == runtime_pins[name], f"{name}: functions pin {version}, requirements.txt {runtime_pins[name]}"
    assert "tensorflow-cpu" not in functions_pins and "tensorflow" not in functions_pins


def test_the_import_closure_of_the_functions_is_found():
    runtime = {str(p.relative_to(REPO)) for p in _runtime_files()}
    assert {"functions/main.py", "shared/events.py", "shared/logs.py", "shared/errors.py"} <= runtime


def test_function_requirements_cover_every_import_the_functions_reach():
    pins = _requirements(REPO / "functions" / "requirements.txt")
    imports = _third_party_imports()
    unresolved = sorted(d for d in imports if d.startswith("?"))
    assert not unresolved, f"imports not installed in .venv: {unresolved}"
    missing = {d: sorted(files) for d, files in imports.items() if d not in pins and d not in NOT_IN_FUNCTION_REQUIREMENTS}
    assert not missing, (
        f"the functions import {missing} (functions/main.py and the shared/ modules it reaches) but "
        "functions/requirements.txt does not pin them "
        "(the deployed functions would fail to import): add them with requirements.txt's version"
    )


# --- identities ----------------------------------------------------------------------

def test_each_function_runs_and_is_triggered_as_its_own_service_account():
    runtime, triggers = {}, {}
    for entry_point, call in function_modules().items():
        runtime[entry_point] = call["service_account_email"]
        triggers[entry_point] = call["trigger_service_account_email"]
        assert runtime[entry_point] == f'${{google_service_account.component["{entry_point}"].email}}'
        assert triggers[entry_point] == f'${{google_service_account.trigger["{entry_point}"].email}}'
    components = root().locals["components"]
    assert set(function_modules()) | {"trainer", "function_build"} == set(components)
    ids = [c["id"] for c in components.values()] + list(root().locals["triggers"].values())
    assert len(ids) == len(set(ids))
    assert all(6 <= len(i) <= 30 for i in ids), "service account ids must be 6-30 characters"
    job = root().resource("google_cloud_run_v2_job", "trainer")["template"][0]["template"][0]
    assert job["service_account"] == '${google_service_account.component["trainer"].email}'


def _all_modules() -> list[Module]:
    return [module(directory) for directory in MODULE_DIRECTORIES]


def test_no_basic_roles_no_public_members_and_project_roles_only_where_unavoidable():
    for mod in _all_modules():
        for (type_, name), body in mod.resources.items():
            if not type_.endswith(("_iam_member", "_iam_binding", "_iam_policy")):
                continue
            role = body.get("role", "")
            members = [body.get("member", "")] + list(body.get("members", []))
            assert role not in ("roles/owner", "roles/editor", "roles/viewer"), f"{type_}.{name} grants {role}"
            assert not any(m in ("allUsers", "allAuthenticatedUsers") for m in members), f"{type_}.{name} is public"
            if type_.startswith("google_project_iam"):
                roles = [role] if role and "each" not in role else re.findall(r"roles/[\w.]+", str(body.get("for_each", "")))
                for r in roles:
                    assert r in PROJECT_LEVEL_ROLES, f"{type_}.{name} binds {r} on the whole project"
                if "roles/datastore.user" in roles:
                    assert "databases/(default)" in str(root().locals["firestore_database"]) and body.get("condition"), \
                        "Firestore access must be conditioned on the database"


# Every role each Edgeloop service account holds, and on which resource (the
# Terraform address of the binding). Anything granted that is not here fails the
# test, as does anything here no longer granted. docs/security.md explains each.
EXPECTED_ROLES: dict[str, set[tuple[str, str]]] = {
    "component:on_upload": {
        ("roles/datastore.user", "google_project_iam_member.firestore_user"),  # conditioned: (default) database
        ("roles/storage.objectViewer", "google_storage_bucket_iam_member.data_reader"),  # data bucket
        ("roles/storage.objectUser", "google_storage_bucket_iam_member.on_upload_quarantines"),  # uploads/, quarantine/ only
        ("roles/pubsub.publisher", "google_pubsub_topic_iam_member.retrain_publisher"),  # retrain-requests
        ("roles/pubsub.publisher", "google_pubsub_topic_iam_member.malformed_to_dead_letter"),  # storage-events DLQ
    },
    "component:on_feedback": {
        ("roles/datastore.user", "google_project_iam_member.firestore_user"),
        ("roles/pubsub.publisher", "google_pubsub_topic_iam_member.retrain_publisher"),
    },
    "component:check_drift": {
        ("roles/datastore.user", "google_project_iam_member.firestore_user"),
        # its tick ingests objects no event was handled for (shared/gcp/reconcile.py), as on_upload does
        ("roles/storage.objectViewer", "google_storage_bucket_iam_member.data_reader"),
        ("roles/storage.objectUser", "google_storage_bucket_iam_member.on_upload_quarantines"),  # uploads/, quarantine/ only
        ("roles/pubsub.publisher", "google_pubsub_topic_iam_member.retrain_publisher"),
        ("roles/pubsub.publisher", "google_pubsub_topic_iam_member.malformed_to_dead_letter"),  # drift-checks DLQ
        # its tick asks the backend about each running run's execution (shared/gcp/watch.py)
        ("roles/run.viewer", "google_cloud_run_v2_job_iam_member.tick_watches_trainer"),  # cloud_run_job backend
        ("roles/aiplatform.viewer", "google_project_iam_member.tick_watches_vertex_jobs"),  # vertex backend
    },
    "component:launch_training": {
        ("roles/datastore.user", "google_project_iam_member.firestore_user"),
        ("roles/pubsub.publisher", "google_pubsub_topic_iam_member.malformed_to_dead_letter"),  # retrain-requests DLQ
        ("roles/run.jobsExecutorWithOverrides", "google_cloud_run_v2_job_iam_member.launcher_runs_trainer"),  # cloud_run_job backend
        ("roles/aiplatform.user", "google_project_iam_member.launcher_creates_vertex_jobs"),  # vertex backend
        ("roles/iam.serviceAccountUser", "google_service_account_iam_member.launcher_acts_as_trainer"),  # vertex: on the trainer SA only
    },
    "component:trainer": {
        ("roles/datastore.user", "google_project_iam_member.firestore_user"),
        ("roles/storage.objectViewer", "google_storage_bucket_iam_member.data_reader"),
        ("roles/storage.objectCreator", "google_storage_bucket_iam_member.trainer_publishes_models"),  # models/ only
        ("roles/secretmanager.secretAccessor", "google_secret_manager_secret_iam_member.trainer_reads_signing_key"),
    },
    "component:function_build": {
        ("roles/logging.logWriter", "google_project_iam_member.function_builder"),
        ("roles/artifactregistry.writer", "google_project_iam_member.function_builder"),
        ("roles/storage.objectViewer", "google_storage_bucket_iam_member.function_build_reads_source"),
    },
    # Trigger identities (modules/event_function): invoke their own function; Eventarc's needs eventReceiver.
    "trigger:on_upload": {("roles/run.invoker", "module.event_function.invoker")},
    "trigger:on_feedback": {("roles/run.invoker", "module.event_function.invoker"),
                            ("roles/eventarc.eventReceiver", "module.event_function.event_receiver")},
    "trigger:check_drift": {("roles/run.invoker", "module.event_function.invoker")},
    "trigger:launch_training": {("roles/run.invoker", "module.event_function.invoker")},
}


def _for_each_keys(mod: Module, expression: Any) -> list[str]:
    if expression is None:
        return []
    if isinstance(expression, dict):
        return list(expression)
    local = re.fullmatch(r"\$\{(?:toset\()?local\.(\w+)\)?\}", str(expression))
    if local:
        value = mod.locals[local.group(1)]
        return list(value) if isinstance(value, (list, dict)) else []
    listed = re.fullmatch(r"\$\{toset\(\[(.*)\]\)\}", str(expression))
    assert listed, f"cannot read for_each {expression!r}"
    return re.findall(r'"([^"]+)"', listed.group(1))


def _granted_roles() -> dict[str, set[tuple[str, str]]]:
    """service account (component:x / trigger:x) -> {(role, binding address)}, read from the HCL."""
    granted: dict[str, set[tuple[str, str]]] = {}
    mod = root()
    for (type_, name), body in mod.resources.items():
        if not type_.endswith(("_iam_member", "_iam_binding", "_iam_policy")):
            continue
        assert type_.endswith("_iam_member"), f"{type_}.{name}: use additive _iam_member bindings only"
        keys = _for_each_keys(mod, body.get("for_each")) or [None]
        for key in keys:
            role = body["role"].replace("${each.value}", key) if key else body["role"]
            member = body["member"].replace("[each.key]", f'["{key}"]') if key else body["member"]
            found = re.fullmatch(r'\$\{google_service_account\.(component|trigger)\["(\w+)"\]\.member\}', member)
            if found:
                granted.setdefault(f"{found.group(1)}:{found.group(2)}", set()).add((role, f"{type_}.{name}"))
            else:  # Google's own service agents (Storage, Pub/Sub) only
                assert "service_account" in member and "google_service_account.component" not in member, (type_, name, member)
    function_module = module("modules/event_function")
    trigger_roles = {}
    for (type_, name), body in function_module.resources.items():
        if type_.endswith("_iam_member") and body["member"] == "serviceAccount:${var.trigger_service_account_email}":
            trigger_roles[name] = body["role"]
    for entry_point, call in function_modules().items():
        roles = {(trigger_roles["invoker"], "module.event_function.invoker")}
        if call.get("firestore_trigger") is not None:
            roles.add((trigger_roles["event_receiver"], "module.event_function.event_receiver"))
        granted.setdefault(f"trigger:{entry_point}", set()).update(roles)
    return granted


def test_each_service_account_holds_exactly_the_roles_it_needs():
    granted = _granted_roles()
    assert set(granted) == set(EXPECTED_ROLES), "service accounts with roles differ from the table"
    for account, expected in EXPECTED_ROLES.items():
        extra, missing = granted[account] - expected, expected - granted[account]
        assert not extra, f"{account} holds roles beyond its table: {sorted(extra)}"
        assert not missing, f"{account} lacks roles its code needs: {sorted(missing)}"
    assert all(not r.startswith(("roles/storage.admin", "roles/storage.objectAdmin")) for roles in granted.values() for r, _ in roles)


def test_the_narrowed_bindings_keep_their_conditions():
    iam = root()
    on_upload = iam.resource("google_storage_bucket_iam_member", "on_upload_quarantines")["condition"]
    on_upload = on_upload[0] if isinstance(on_upload, list) else on_upload
    assert "/uploads/" in on_upload["expression"] and "/quarantine/" in on_upload["expression"]
    assert "/dataset/" not in on_upload["expression"] and "/models/" not in on_upload["expression"]
    trainer = iam.resource("google_storage_bucket_iam_member", "trainer_publishes_models")["condition"]
    trainer = trainer[0] if isinstance(trainer, list) else trainer
    assert re.fullmatch(r'resource\.name\.startsWith\("\$\{local\.bucket_object_names\}/models/"\)', trainer["expression"])
    secret = iam.resource("google_secret_manager_secret_iam_member", "trainer_reads_signing_key")
    assert secret["secret_id"] == "${google_secret_manager_secret.signing_key.secret_id}"
    assert set(iam.locals["dead_letter_publishers"]) == {"on_upload", "check_drift", "launch_training"}


def test_every_function_that_dead_letters_malformed_messages_may_publish_to_that_dead_letter_topic():
    """functions/main.py's @_acknowledge_malformed("<topic>") forwards to that topic's dead-letter topic."""
    source = (REPO / "functions" / "main.py").read_text()
    forwarding = dict(
        (function, topic) for topic, function in re.findall(r'@_acknowledge_malformed\("(\w+)"\)\s*\ndef (\w+)', source)
    )
    assert forwarding, "no dead-lettering handler found in functions/main.py"
    publishers = root().locals["dead_letter_publishers"]
    assert set(publishers) == set(forwarding)
    for function, topic in forwarding.items():
        assert topic in root().locals["topic_names"], topic
        assert publishers[function] == f'${{module.topic["{topic}"].dead_letter_topic_name}}', function


# --- alerting ------------------------------------------------------------------------

def _emitted_events() -> set[str]:
    """Event names passed to shared.logs.log(severity, event, ...) anywhere in the product code."""
    emitted = set()
    for directory in ("functions", "shared", "trainer_job", "edgeloop", "client_sdk"):
        for path in (REPO / directory).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] == "log":
                    args = node.args
                    if len(args) >= 2 and isinstance(args[1], ast.Constant) and isinstance(args[1].value, str):
                        emitted.add(args[1].value)
    return emitted


def test_log_lines_carry_the_fields_the_metrics_filter_on(capsys):
    from shared.logs import log

    log("WARNING", "drift_detected", "probe", model="digits")
    entry = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert entry["severity"] == "WARNING" and entry["event"] == "drift_detected" and entry["model"] == "digits"


def test_every_alerted_event_has_a_metric_and_an_alert_and_is_written_by_the_code():
    alerted = root().locals["alerted_events"]
    assert set(alerted) == ALERTED_EVENTS
    metric = root().resource("google_logging_metric", "event")
    assert metric["for_each"] == "${local.alerted_events}"
    assert metric["filter"].startswith('jsonPayload.event=\\"${each.key}\\"') or metric["filter"].startswith('jsonPayload.event="${each.key}"')
    assert metric["label_extractors"]["model"] == "EXTRACT(jsonPayload.model)"
    policy = root().resource("google_monitoring_alert_policy", "event")
    assert policy["for_each"] == "${local.alerted_events}"
    assert "google_logging_metric.event[each.key].name" in policy["conditions"][0]["condition_threshold"][0]["filter"]
    emitted = _emitted_events()
    assert "malformed_event" in emitted
    not_written = sorted(e for e in ALERTED_EVENTS if e not in emitted and e not in PENDING_EVENTS)
    assert not not_written, f"alerts on {not_written}, which no code logs"


def test_event_alerts_are_per_model_and_version_and_the_drop_and_failure_events_carry_both():
    metric = root().resource("google_logging_metric", "event")
    labels = {label["key"] for label in metric["metric_descriptor"][0]["labels"]}
    assert labels == {"model", "model_version"}
    assert metric["label_extractors"]["model_version"] == "EXTRACT(jsonPayload.model_version)"
    policy = root().resource("google_monitoring_alert_policy", "event")
    grouped = policy["conditions"][0]["condition_threshold"][0]["aggregations"][0]["group_by_fields"]
    assert grouped == ["metric.label.model", "metric.label.model_version"]
    alerted = root().locals["alerted_events"]
    assert alerted["run_failed"]["severity"] == "ERROR" and alerted["success_rate_dropped"]["severity"] == "ERROR"
    # The code paths that decide them name the model (and the version) on the line (shared/gcp/runs.py, feedback.py).
    for module, event, fields in (("runs", "run_failed", {"model"}), ("feedback", "success_rate_dropped", {"model", "model_version"})):
        calls = [node for node in ast.walk(ast.parse((REPO / "shared" / "gcp" / f"{module}.py").read_text()))
                 if isinstance(node, ast.Call) and ast.unparse(node.func) == "log" and len(node.args) >= 2
                 and isinstance(node.args[1], ast.Constant) and node.args[1].value == event]
        assert calls, f"shared/gcp/{module}.py logs no {event}"
        assert fields <= {keyword.arg for keyword in calls[0].keywords}, (event, fields)


def test_every_function_has_an_error_rate_alert_on_cloud_runs_request_count():
    policy = root().resource("google_monitoring_alert_policy", "function_errors")
    conditions = policy["dynamic"][0]["conditions"]
    assert conditions["for_each"] == "${module.event_function}", "one condition per deployed function"
    threshold = conditions["content"][0]["condition_threshold"][0]
    for key in ("filter", "denominator_filter"):
        request_count = threshold[key].replace('\\"', '"')  # however the parser leaves the HCL escapes
        assert 'metric.type="run.googleapis.com/request_count"' in request_count, key
        assert 'resource.type="cloud_run_revision"' in request_count, key
        assert 'resource.label.service_name="${conditions.value.name}"' in request_count, key
    assert 'metric.label.response_code_class="5xx"' in threshold["filter"].replace('\\"', '"')
    assert "response_code_class" not in threshold["denominator_filter"]  # errors over all requests: a rate
    assert threshold["threshold_value"] == "${local.function_error_rate.threshold}"
    assert 0 < root().locals["function_error_rate"]["threshold"] < 1
    for key in ("aggregations", "denominator_aggregations"):
        assert threshold[key][0]["group_by_fields"] == ["resource.label.service_name"], key
    # A 2nd gen function's Cloud Run service is named like the function: the module's name output.
    assert "google_cloudfunctions2_function.this.name" in module(EVENT_FUNCTION).outputs["name"]["value"]


def test_the_fleet_inventory_query_has_its_composite_index():
    """shared/gcp/tallies.fleet_version: equality on model_version, a range on last_seen, over devices."""
    indexes = root().variables["firestore_composite_indexes"]["default"]
    fields = [[(f["field_path"], f["order"]) for f in index["fields"]] for index in indexes if index["collection"] == "devices"]
    assert fields == [[("model_version", "ASCENDING"), ("last_seen", "ASCENDING")]]


def test_dead_letters_raise_an_alert_for_every_topic():
    assert root().locals["dead_letter_subscriptions"] == (
        "${{for field, topic in module.topic : field => topic.dead_letter_subscription_name}}"
    )
    assert set(for_each_calls(TOPIC_MODULE)) == set(stack.PUSH_ROUTES), "every topic, and only those, is watched"
    policy = root().resource("google_monitoring_alert_policy", "dead_letters")
    condition = policy["dynamic"][0]["conditions"]
    assert condition["for_each"] == "${local.dead_letter_subscriptions}"
    assert "num_undelivered_messages" in condition["content"][0]["condition_threshold"][0]["filter"]


# --- checkov -------------------------------------------------------------------------

def _checkov(*arguments: str) -> dict:
    if not CHECKOV.exists():
        pytest.fail(
            f"checkov is not installed at {CHECKOV.relative_to(REPO)}: run scripts/bootstrap.sh, which installs it "
            "into its own virtualenv (.venv-checkov) so its dependencies stay out of .venv",
            pytrace=False,
        )
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "LOG_LEVEL": "ERROR"}
    result = subprocess.run(
        [str(CHECKOV), *arguments, "--skip-download", "--output", "json"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode in (0, 1), f"checkov crashed ({result.returncode}):\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    if isinstance(report, list):  # one entry per framework
        assert len(report) == 1, [r.get("check_type") for r in report]
        report = report[0]
    return report


def _assert_clean(report: dict, what: str) -> None:
    summary = report["summary"]
    results = report.get("results", {})
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})"
        for c in results.get("failed_checks", [])
    ]
    assert not failed and summary["failed"] == 0, (
        f"checkov findings in {what}: fix each, or suppress it inline with "
        "#checkov:skip=CKV_ID:reason\n" + "\n".join(failed)
    )
    assert summary["parsing_errors"] == 0, f"checkov could not parse part of {what}"
    for check in results.get("skipped_checks", []):
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) >= 30, f"{check['check_id']} on {check['resource']} is suppressed without a written reason"


def test_checkov_finds_nothing_unexplained_in_the_terraform():
    report = _checkov("--directory", str(TERRAFORM.relative_to(REPO)), "--framework", "terraform")
    _assert_clean(report, "infra/terraform")
    assert report["summary"]["passed"] > 50, "checkov scanned suspiciously little"


def test_checkov_finds_nothing_unexplained_in_the_trainer_dockerfile():
    dockerfile = REPO / "trainer_job" / "Dockerfile"
    if not dockerfile.exists():
        pytest.skip("trainer_job/Dockerfile does not exist yet (issue 5)")
    report = _checkov("--file", str(dockerfile.relative_to(REPO)), "--framework", "dockerfile")
    _assert_clean(report, "trainer_job/Dockerfile")


# --- GPU-capable training: off by default, on with var.trainer -------------------------------------

def _evaluate(expressions: list[str], trainer: str | None = None, variable: str = "trainer") -> list[Any]:
    """Terraform's own value of each ``${...}`` expression of this configuration, given ``-var <variable>=...``:
    ``terraform console`` over the real ``variable "<variable>"`` block (its defaults and validation rules), which
    needs no provider. Raises AssertionError with Terraform's message when the value is refused."""
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed")
    text = (TERRAFORM / "variables.tf").read_text()
    start = text.index(f'variable "{variable}" {{')
    block = text[start:text.index("\n}\n", start) + 3]
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "variables.tf").write_text(block)
        # Piped into the console, only the last line is printed: one expression holds them all.
        tuple_ = ", ".join(e.removeprefix("${").removesuffix("}") for e in expressions)
        result = subprocess.run(
            [terraform, "console", "-no-color", *(["-var", f"{variable}={trainer}"] if trainer else [])],
            input=f"jsonencode([{tuple_}])\n", cwd=directory, capture_output=True, text=True, timeout=120,
            env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"})
    assert result.returncode == 0 and "Error" not in result.stderr, result.stderr
    values = json.loads(json.loads(result.stdout.strip().splitlines()[-1]))
    assert len(values) == len(expressions), result.stdout
    return values


def _gpu_expressions() -> list[str]:
    job = root().resource("google_cloud_run_v2_job", "trainer")["template"][0]["template"][0]
    (selector,) = [d["node_selector"] for d in job["dynamic"] if "node_selector" in d]
    assert selector["content"][0]["accelerator"] == "${node_selector.value}"
    launcher = root().locals["launcher_env"]
    return [selector["for_each"], job["gpu_zonal_redundancy_disabled"], job["containers"][0]["resources"][0]["limits"],
            launcher["EDGELOOP_TRAINING__VERTEX_ACCELERATOR_TYPE"], launcher["EDGELOOP_TRAINING__VERTEX_ACCELERATOR_COUNT"]]


def test_the_trainer_has_no_gpu_by_default():
    selectors, zonal, limits, vertex_type, vertex_count = _evaluate(_gpu_expressions())
    assert selectors == [] and zonal is None and limits == {"cpu": "2", "memory": "4Gi"}
    assert vertex_type == "" and Settings(training={"vertex_accelerator_type": vertex_type}).training.vertex_accelerator_type == ""


def test_a_gpu_on_the_cloud_run_job_with_the_variable():
    selectors, zonal, limits, _, _ = _evaluate(_gpu_expressions(), '{gpu = "nvidia-l4", cpu = "4", memory = "16Gi"}')
    assert selectors == ["nvidia-l4"] and zonal is True
    assert limits == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}


@pytest.mark.parametrize("trainer, refusal", [
    ('{gpu = "nvidia-l4"}', "at least 4 CPU and 16Gi"),  # Cloud Run's minimum for a GPU instance
    ('{gpu = "nvidia-l4", cpu = "4", memory = "8Gi"}', "at least 4 CPU and 16Gi"),
    ('{gpu = "nvidia-t4", cpu = "4", memory = "16Gi"}', 'must be null \\(no GPU\\) or "nvidia-l4"'),
    ('{vertex_accelerator_type = "nvidia-l4"}', "Vertex AI accelerator type name"),
    ('{vertex_accelerator_type = "NVIDIA_L4", vertex_accelerator_count = 0}', "between 1 and 8"),
])
def test_a_gpu_configuration_cloud_run_or_vertex_would_refuse_is_refused_at_plan(trainer, refusal):
    with pytest.raises(AssertionError, match=refusal):
        _evaluate(["var.trainer"], trainer)


def test_vertex_accelerators_reach_launch_training_as_its_settings():
    _, _, _, vertex_type, vertex_count = _evaluate(
        _gpu_expressions(), '{vertex_machine_type = "g2-standard-8", vertex_accelerator_type = "NVIDIA_L4"}')
    assert (vertex_type, vertex_count) == ("NVIDIA_L4", "1")
    training = Settings(training={"vertex_accelerator_type": vertex_type, "vertex_accelerator_count": vertex_count}).training
    assert (training.vertex_accelerator_type, training.vertex_accelerator_count) == ("NVIDIA_L4", 1)
    # tests/unit/shared/gcp/test_launchers.py checks the CustomJob request then carries them.


def test_the_trainer_image_has_a_gpu_variant_with_the_same_tensorflow_version(tmp_path):
    """trainer_job/Dockerfile's TRAINER_VARIANT step, run as the build runs it, on the repository's requirements."""
    dockerfile = (REPO / "trainer_job" / "Dockerfile").read_text()
    (step,) = [s for s in re.split(r"\n(?=[A-Z]+ )", dockerfile) if s.startswith("RUN ") and "TRAINER_VARIANT" in s]
    assert "ARG TRAINER_VARIANT=cpu" in dockerfile and "-r requirements-image.txt" in dockerfile
    script = "\n".join(line for line in step.removeprefix("RUN ").splitlines() if not line.lstrip().startswith("#"))
    (tmp_path / "requirements.txt").write_text((REPO / "requirements.txt").read_text())
    pinned = re.search(r"^tensorflow-cpu==(\S+)$", (REPO / "requirements.txt").read_text(), re.M).group(1)

    def build(variant: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-o", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                              env={**os.environ, "TRAINER_VARIANT": variant}, timeout=30)

    assert build("cpu").returncode == 0
    cpu = (tmp_path / "requirements-image.txt").read_text()
    assert cpu == (REPO / "requirements.txt").read_text()
    assert build("gpu").returncode == 0
    gpu = (tmp_path / "requirements-image.txt").read_text()
    assert f"tensorflow[and-cuda]=={pinned}" in gpu.splitlines() and "tensorflow-cpu" not in gpu
    assert [line for line in gpu.splitlines() if "tensorflow" not in line] == \
        [line for line in cpu.splitlines() if "tensorflow" not in line]  # everything else pinned alike
    refused = build("tpu")
    assert refused.returncode != 0 and "TRAINER_VARIANT must be cpu or gpu" in refused.stderr


# --- concurrency per instance and the memory tier (issue 21) ---------------------------------------------------

def test_each_function_serves_the_requests_at_once_its_limits_say():
    service = module("modules/event_function").resource("google_cloudfunctions2_function", "this")["service_config"][0]
    assert service["max_instance_request_concurrency"] == "${var.limits.concurrency}"
    assert service["available_cpu"] == "${var.limits.cpu}" and service["available_memory"] == "${var.limits.memory}"


def test_the_default_limits_are_the_capacity_models_sizing():
    """on_upload and on_feedback serve several requests at once with a whole CPU; the capacity model
    (edgeloop/capacity.py, BENCHMARKS.md's capacity section) prices exactly what Terraform deploys."""
    from edgeloop.capacity import DEPLOYED

    (limits,) = _evaluate(["var.function_limits"], variable="function_limits")
    for name, sizing in DEPLOYED.items():
        deployed = limits[name]
        assert deployed["concurrency"] == sizing.concurrency and float(deployed["cpu"]) == sizing.vcpu
        memory = deployed["memory"]
        assert int(memory[:-2]) * (1024 if memory.endswith("Gi") else 1) == sizing.memory_gib * 1024
    assert all(f["concurrency"] == 1 or float(f["cpu"]) >= 1 for f in limits.values())
    assert limits["check_drift"]["concurrency"] == 1 and limits["launch_training"]["concurrency"] == 1


@pytest.mark.parametrize("limits, refusal", [
    ('{on_feedback = {concurrency = 4, cpu = "0.5"}}', "above 1 only with cpu >= 1"),
    ('{on_upload = {concurrency = 0}}', "concurrency must be 1-1000"),
    ('{on_upload = {concurrency = 1001}}', "concurrency must be 1-1000"),
])
def test_concurrency_above_one_without_a_whole_cpu_is_refused_at_plan(limits, refusal):
    with pytest.raises(AssertionError, match=refusal.replace("(", r"\(")):
        _evaluate(["var.function_limits"], limits, variable="function_limits")

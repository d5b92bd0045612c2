"""A model's own definition: its name, its labels, and its overrides of the global settings.

Pure rules (no cloud client; ``shared.gcp.model_settings`` stores them). A model is created by
``edgeloop model create``; what it may change per model is the business settings of four groups:
``thresholds``, ``gate``, ``release`` and the device's capture defaults in ``client``. Everything
else (ports, topics, delivery, image limits, training backends) is one deployment's and stays global.

A model's *effective* settings are the global ``Settings`` with its overrides, each group validated
by the same pydantic model as the global one, so an override is refused with pydantic's reason.
The client overrides are also published on the pointer document devices poll; ``device_settings``
is how the client SDK applies them (over its built-in defaults, never over what the app set).
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, Iterable, Mapping

from pydantic import BaseModel, ValidationError

from shared.config import Client, Gate, Release, Settings, Thresholds
from shared.errors import EdgeloopError
from shared.layout import LABEL_ID, MODEL_ID

# The groups a model may override, and the pydantic model that validates each.
OVERRIDABLE: dict[str, type[BaseModel]] = {"thresholds": Thresholds, "gate": Gate, "release": Release, "client": Client}
# Of ``client``, only the capture defaults are a model's: transport retries and timeouts are the app's and device's.
CLIENT_PER_MODEL = ("capture_below_confidence", "capture_sample_rate", "daily_capture_count", "random_sample_reserve",
                    "daily_capture_bytes", "capture_max_side", "capture_format")

MIN_LABELS = 2  # a classifier with one class has nothing to decide
# The pointer every device polls carries the labels: 1,000 labels of at most 63 characters keep it near 64 KiB.
MAX_LABELS = 1000
# The square RGB input side a model is trained at (trainer_job TrainConfig.image_size): from the smallest image
# a valid upload may be (config.ImageLimits.min_side) to what a one-core trainer and a phone still handle.
DEFAULT_IMAGE_SIZE = 32
MIN_IMAGE_SIZE = 8
MAX_IMAGE_SIZE = 512

_MODEL = re.compile(MODEL_ID)
_LABEL = re.compile(LABEL_ID)

Overrides = dict[str, dict[str, Any]]  # {group: {field: value}}


class ModelDefinitionError(EdgeloopError, ValueError):
    """A model name, label set, image size or settings override that cannot be used; the message says why."""


def groups_of(settings: Settings) -> dict[str, BaseModel]:
    """The groups of ``settings`` a model may override, named one by one (a getattr would hide from
    tests/unit/shared/test_trainer_settings.py which settings the trainer reads)."""
    return {"thresholds": settings.thresholds, "gate": settings.gate, "release": settings.release, "client": settings.client}


def check_model_name(name: str) -> str:
    if not isinstance(name, str) or not _MODEL.fullmatch(name):
        raise ModelDefinitionError(
            f"invalid model name {name!r}: use 1-63 characters of lowercase letters, digits, '_' and '-', starting "
            "with a letter or digit (it is a Storage path segment, a Firestore document id and part of job names)")
    return name


def check_labels(labels: Iterable[str]) -> tuple[str, ...]:
    """The labels in their order (a label's index is the model's class index), or why they cannot be used."""
    labels = tuple(labels)
    for label in labels:
        if not isinstance(label, str) or not _LABEL.fullmatch(label):
            raise ModelDefinitionError(
                f"invalid label {label!r}: use 1-63 characters of letters, digits, '_' and '-', starting with a "
                "letter or digit (a label is the folder of its images in dataset/MODEL/LABEL/)")
    if len(labels) < MIN_LABELS:
        raise ModelDefinitionError(f"a model needs at least {MIN_LABELS} labels, got {len(labels)}: {list(labels)}")
    if len(labels) > MAX_LABELS:
        raise ModelDefinitionError(f"a model has at most {MAX_LABELS} labels, got {len(labels)}")
    seen: dict[str, str] = {}
    for label in labels:
        other = seen.get(label.lower())
        if other == label:
            raise ModelDefinitionError(f"label {label!r} is given more than once")
        seen[label.lower()] = label
        if other is not None:
            raise ModelDefinitionError(
                f"labels {other!r} and {label!r} differ only in case: their folders would be one on a case-insensitive "
                "file system (a dataset export, a Mac or Windows checkout)")
    return labels


def labels_from_text(text: str) -> tuple[str, ...]:
    """``"cat,dog, bird"`` → the checked labels, spaces around each ignored."""
    return check_labels(part.strip() for part in text.split(","))


def check_image_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
        raise ModelDefinitionError(
            f"invalid image size {size!r}: a model's input is a square of {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} pixels")
    return size


def _value(text: str) -> Any:
    """A ``--set`` value: JSON when it parses (numbers, lists, true/false), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_assignments(assignments: Iterable[str]) -> Overrides:
    """``["thresholds.new_data_images=50", "gate.gated_stresses=[\\"dark\\"]"]`` → ``{group: {field: value}}``
    (unchecked: ``check_overrides`` validates)."""
    overrides: Overrides = {}
    for assignment in assignments:
        key, equals, text = assignment.partition("=")
        group, dot, field = key.strip().partition(".")
        if not equals or not dot or not group or not field:
            raise ModelDefinitionError(f"--set {assignment!r}: expected GROUP.FIELD=VALUE, e.g. thresholds.new_data_images=50")
        overrides.setdefault(group, {})[field] = _value(text.strip())
    return overrides


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())


def _check_fields(group: str, fields: Mapping[str, Any]) -> None:
    if group not in OVERRIDABLE:
        raise ModelDefinitionError(f"settings group {group!r} cannot be set per model; these can: {sorted(OVERRIDABLE)}")
    if not isinstance(fields, Mapping):
        raise ModelDefinitionError(f"{group}: expected a mapping of fields to values, got {type(fields).__name__}")
    known = OVERRIDABLE[group].model_fields if group != "client" else CLIENT_PER_MODEL
    for field in fields:
        if field not in known:
            close = difflib.get_close_matches(str(field), list(known), n=1)
            hint = f" (did you mean {group}.{close[0]}?)" if close else ""
            what = "capture default of client" if group == "client" else f"field of {group}"
            raise ModelDefinitionError(f"{group}.{field} is not a {what}{hint}; known: {', '.join(known)}")


def effective_group(group: str, base: BaseModel, fields: Mapping[str, Any]) -> BaseModel:
    """``base`` (the global group) with ``fields`` overridden, validated as the global group is."""
    _check_fields(group, fields)
    if not fields:
        return base
    try:
        return OVERRIDABLE[group].model_validate({**base.model_dump(), **fields})
    except ValidationError as exc:
        raise ModelDefinitionError(f"invalid {group} override {dict(fields)}: {_problems(exc)}") from None


def check_overrides(overrides: Mapping[str, Mapping[str, Any]], settings: Settings) -> Overrides:
    """The overrides validated against the global ``settings``, each value in its stored (JSON) form."""
    checked: Overrides = {}
    for group, fields in overrides.items():
        merged = effective_group(group, groups_of(settings).get(group), fields)
        if fields:
            dumped = merged.model_dump(mode="json")
            checked[group] = {field: dumped[field] for field in fields}
    return checked


def merge_overrides(stored: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]) -> Overrides:
    """Field by field: what ``new`` sets replaces what was stored, the rest stays."""
    merged: Overrides = {group: dict(fields) for group, fields in stored.items()}
    for group, fields in new.items():
        merged.setdefault(group, {}).update(fields)
    return {group: fields for group, fields in merged.items() if fields}


def effective_settings(settings: Settings, overrides: Mapping[str, Mapping[str, Any]] | None) -> Settings:
    """The global settings with a model's overrides. Applying the same overrides again changes nothing."""
    if not overrides:
        return settings
    updates = {group: effective_group(group, groups_of(settings).get(group), fields) for group, fields in overrides.items()}
    return settings.model_copy(update=updates)


def settings_rows(settings: Settings, overrides: Mapping[str, Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Every per-model setting's effective value and whether the model overrides it (``edgeloop model show``)."""
    effective, base = groups_of(effective_settings(settings, overrides)), groups_of(settings)
    overrides = overrides or {}
    rows = []
    for group in OVERRIDABLE:
        fields = CLIENT_PER_MODEL if group == "client" else tuple(OVERRIDABLE[group].model_fields)
        values, global_values = effective[group].model_dump(mode="json"), base[group].model_dump(mode="json")
        for field in fields:
            rows.append({"setting": f"{group}.{field}", "value": values[field],
                         "override": field in overrides.get(group, {}),
                         "global": global_values[field]})
    return rows


def device_settings(app: Client, published: Mapping[str, Any] | None) -> Client:
    """The client SDK's settings for one model: the capture defaults the model publishes on its pointer
    replace the built-in defaults; a field the app set itself (``Client(capture_sample_rate=...)``) wins.

    What a device cannot use (an unknown field, an invalid value) leaves its settings as they are: a
    pointer from a newer server must not stop an older app."""
    fields = {field: value for field, value in (published or {}).items()
              if field in CLIENT_PER_MODEL and field not in app.model_fields_set}
    if not fields:
        return app
    try:
        return Client.model_validate({**app.model_dump(), **fields})
    except ValidationError:
        return app

"""Adapter (store): a model's definition in Firestore, and its effective settings.

``edgeloop model create`` writes, in one transaction:

* ``models/{m}`` (the pointer devices poll): ``model``, ``labels`` and ``client``, the model's capture
  defaults (``shared.model_settings.CLIENT_PER_MODEL``) that the client SDK applies;
* ``models/{m}/control/settings`` (server-only): every override, ``{group: {field: value}}``;
* ``models/{m}/control/trainer``: the input size in the trainer's configuration (``config.image_size``).

Every use case that decides something about one model reads its overrides once per event (one
document read, no cache), so a changed override applies from the next event on in every function
instance, and the trainer applies those it reads when its run starts. on_upload and on_feedback, whose
rates are the uploads' and the reports', are the exception: ``definition`` reads a model's labels and
overrides in one round trip and its instance keeps them for ``caching.model_definition_ttl_s`` (30 s by
default), so an operator's changed override reaches uploads and reports within that delay (a model not
registered yet is never kept: it is seen as soon as it is created).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

from google.api_core import exceptions as gexc
from google.cloud import firestore
from pydantic import ValidationError

from shared import layout
from shared.config import Settings
from shared.gcp.clients import firestore_client
from shared.logs import log
from shared.model_settings import (
    DEFAULT_IMAGE_SIZE, ModelDefinitionError, Overrides, check_image_size, check_labels, check_model_name,
    check_overrides, effective_settings, merge_overrides,
)
from shared.registry import ModelPointer
from shared.ttl_cache import TtlCache

# (project, model) -> (labels, overrides) of registered models, for caching.model_definition_ttl_s
_definitions: TtlCache[tuple[frozenset[str], Overrides]] = TtlCache(max_entries=256)


def _overrides_of(snapshot: Any) -> Overrides:
    return dict(((snapshot.to_dict() or {}).get("overrides") or {}) if snapshot.exists else {})


def _image_size_of(snapshot: Any) -> int:
    config = ((snapshot.to_dict() or {}).get("config") or {}) if snapshot.exists else {}
    return int(config.get("image_size", DEFAULT_IMAGE_SIZE))


def load_overrides(model: str, settings: Settings) -> Overrides:
    return _overrides_of(firestore_client(settings.project_id).document(layout.model_settings_doc(model)).get())


def for_model(model: str, settings: Settings) -> Settings:
    """``settings`` with ``model``'s overrides (the global ones for a model without any).

    Overrides were validated when written; one that no longer validates (edited by hand, or a global
    setting it conflicts with changed) is logged as an ERROR and the global settings are used, so the
    model's events are still handled."""
    try:
        overrides = load_overrides(model, settings)
    except (gexc.InvalidArgument, ValueError):  # a model id Firestore cannot address has no overrides (nor a model)
        return settings
    return _effective(model, settings, overrides)


def _effective(model: str, settings: Settings, overrides: Overrides) -> Settings:
    try:
        return effective_settings(settings, overrides)
    except ModelDefinitionError as exc:
        log("ERROR", "model_settings_invalid", f"{model}: {exc}; using the global settings", model=model)
        return settings


def _read_definition(model: str, settings: Settings) -> tuple[frozenset[str] | None, Overrides]:
    from shared.gcp.model_registry import pointer_labels

    db = firestore_client(settings.project_id)
    try:
        pointer_ref, settings_ref = db.document(layout.model_doc(model)), db.document(layout.model_settings_doc(model))
        snapshots = {s.reference.path: s for s in db.get_all([pointer_ref, settings_ref])}
    except (gexc.InvalidArgument, ValueError):  # a model id Firestore cannot address is registered nowhere
        return None, {}
    return pointer_labels(snapshots[pointer_ref.path]), _overrides_of(snapshots[settings_ref.path])


def definition(model: str, settings: Settings) -> tuple[frozenset[str] | None, Settings]:
    """``model``'s registered labels (None: not registered) and its effective settings (``for_model``'s), read in
    one round trip; a registered model's are kept by this instance for ``caching.model_definition_ttl_s``."""
    key, ttl_s = (settings.project_id, model), settings.caching.model_definition_ttl_s
    cached = _definitions.get(key) if ttl_s > 0 else None
    if cached is None:
        labels, overrides = _read_definition(model, settings)
        if labels is None:
            return None, _effective(model, settings, overrides)
        cached = (labels, overrides)
        _definitions.put(key, cached, ttl_s)
    labels, overrides = cached
    return labels, _effective(model, settings, overrides)


def registered_models(settings: Settings) -> list[str]:
    """Every model with a pointer document (created, seeded or trained), by name."""
    return sorted(s.id for s in firestore_client(settings.project_id).collection(layout.MODELS_PREFIX).stream())


@dataclass(frozen=True)
class ModelInfo:
    model: str
    labels: tuple[str, ...]
    image_size: int
    overrides: Overrides
    production: str | None = None
    canary: str | None = None
    canary_percent: float = 0.0
    problem: str | None = None  # why its pointer cannot be read as clients read it (what it serves is then unknown)

    def json(self) -> dict[str, Any]:
        return {"model": self.model, "labels": list(self.labels), "image_size": self.image_size,
                "production": self.production, "canary": self.canary, "canary_percent": self.canary_percent,
                "overrides": self.overrides, "problem": self.problem}


@dataclass(frozen=True)
class CreateOutcome:
    info: ModelInfo
    created: bool  # False: the model existed with these labels
    changed: list[str] = field(default_factory=list)  # what this call changed on an existing model


def _info(model: str, pointer: dict[str, Any], settings_snapshot: Any, trainer_snapshot: Any) -> ModelInfo:
    """One model's definition; a pointer clients would refuse is reported as the model's problem, not raised:
    one broken model must not hide the others from ``model list``."""
    try:
        parsed = ModelPointer.model_validate({"model": model, "labels": [], **pointer})
    except ValidationError as exc:
        labels = pointer.get("labels")
        return ModelInfo(model, tuple(map(str, labels)) if isinstance(labels, list) else (),
                         _image_size_of(trainer_snapshot), _overrides_of(settings_snapshot),
                         problem=f"invalid pointer ({exc.error_count()} problems, first at "
                                 f"{'.'.join(map(str, exc.errors()[0]['loc']))})")
    return ModelInfo(model, parsed.labels, _image_size_of(trainer_snapshot), _overrides_of(settings_snapshot),
                     parsed.production.version if parsed.production else None,
                     parsed.rollout.candidate.version if parsed.rollout.candidate else None, parsed.rollout.percent)


def load_models(settings: Settings, names: Iterable[str] | None = None) -> list[ModelInfo]:
    """Each model's definition (every registered model when ``names`` is None), in name order; a named
    model that does not exist is left out."""
    db = firestore_client(settings.project_id)
    names = sorted(names) if names is not None else registered_models(settings)
    if not names:
        return []
    pointers = {s.id: s for s in db.get_all([db.document(layout.model_doc(m)) for m in names])}
    controls = {s.reference.path: s for s in db.get_all(
        [db.document(path) for m in names for path in (layout.model_settings_doc(m), layout.trainer_config_doc(m))])}
    return [_info(m, pointers[m].to_dict() or {}, controls[layout.model_settings_doc(m)],
                  controls[layout.trainer_config_doc(m)])
            for m in names if m in pointers and pointers[m].exists]


def create_model(model: str, labels: Iterable[str], settings: Settings, image_size: int | None = None,
                 overrides: Overrides | None = None, training: dict[str, Any] | None = None) -> CreateOutcome:
    """Create ``model`` with its labels, input size and overrides, or refuse with the reason.

    An existing model with the same labels (in the same order) is not an error: the call is idempotent,
    and an image size or overrides it gives are applied (overrides field by field, the others kept). An
    existing model with other labels is refused: its images, versions and devices use those. ``training``:
    further fields of the trainer's configuration (the backbone and its weights), already validated by it."""
    model, labels = check_model_name(model), check_labels(labels)
    size = check_image_size(image_size) if image_size is not None else None
    checked = check_overrides(overrides or {}, settings)
    db = firestore_client(settings.project_id)
    pointer_ref = db.document(layout.model_doc(model))
    settings_ref = db.document(layout.model_settings_doc(model))
    trainer_ref = db.document(layout.trainer_config_doc(model))

    @firestore.transactional
    def apply(transaction: firestore.Transaction) -> CreateOutcome:
        pointer, stored, trainer = (ref.get(transaction=transaction) for ref in (pointer_ref, settings_ref, trainer_ref))
        existing = (pointer.to_dict() or {}) if pointer.exists else None
        registered = tuple(existing.get("labels") or ()) if existing is not None else ()
        if registered and registered != labels:
            order = " (the same labels in another order: a label's position is its class)" \
                if sorted(registered) == sorted(labels) else ""
            raise ModelDefinitionError(f"model {model!r} exists with labels {list(registered)}, not {list(labels)}"
                                       f"{order}; choose another name")
        merged = merge_overrides(_overrides_of(stored), checked)
        effective_settings(settings, merged)  # the combination must validate too
        changed = [f"{group}.{name}" for group, fields in checked.items() for name, value in fields.items()
                   if _overrides_of(stored).get(group, {}).get(name, object()) != value]
        new_size = size if size is not None else (_image_size_of(trainer) if trainer.exists else DEFAULT_IMAGE_SIZE)
        if trainer.exists and new_size != _image_size_of(trainer):
            changed.append("image_size")
        stored_config = ((trainer.to_dict() or {}).get("config") or {}) if trainer.exists else {}
        changed += [name for name, value in (training or {}).items() if trainer.exists and stored_config.get(name) != value]
        now = datetime.now(timezone.utc)
        pointer_fields = {"model": model, "labels": list(labels), "client": merged.get("client", {})}
        if existing is None:
            pointer_fields["updated"] = now
        transaction.set(pointer_ref, pointer_fields, merge=True)
        transaction.set(settings_ref, {"model": model, "overrides": merged, "updated": now})
        transaction.set(trainer_ref, {"config": {"image_size": new_size, **(training or {})}}, merge=True)
        info = ModelInfo(model, labels, new_size, merged)
        return CreateOutcome(info, created=not registered, changed=changed)

    outcome = apply(db.transaction())
    _definitions.forget((settings.project_id, model))  # this process sees its own change at once
    log("INFO", "model_created" if outcome.created else "model_updated",
        f"{model}: labels {list(labels)}, image size {outcome.info.image_size}, overrides {outcome.info.overrides}",
        model=model, labels=list(labels), image_size=outcome.info.image_size, changed=outcome.changed)
    return outcome

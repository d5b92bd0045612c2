"""The models on the device: the active one, the previous one, and downloads in progress.

Layout under the store's directory::

    models/{sha256}.tflite   verified model files (content-addressed)
    partial/{sha256}.part    a download in progress (resumed after a restart)
    state.json               {"active": ModelRef, "previous": ModelRef, "refused": {offer key: reason}}

Every change is a write to a temporary file, fsync, ``os.replace``: a crash at
any moment leaves either the old state or the new one. A model file is only
ever named by its sha256 after it was verified, and ``state.json`` only ever
names such files, so the active model cannot be a partial or broken file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path

from shared import integrity
from shared.registry import ModelRef


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class ModelStore:
    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)
        (self.directory / "models").mkdir(parents=True, exist_ok=True)
        (self.directory / "partial").mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._state = self._load_state()

    # --- reading ----------------------------------------------------------------------

    def active(self) -> ModelRef | None:
        with self._lock:
            return self._ref("active")

    def previous(self) -> ModelRef | None:
        with self._lock:
            return self._ref("previous")

    def model_path(self, ref: ModelRef) -> Path:
        return self.directory / "models" / f"{ref.sha256}.tflite"

    def partial_path(self, ref: ModelRef) -> Path:
        return self.directory / "partial" / f"{ref.sha256}.part"

    def read_model(self, ref: ModelRef) -> bytes | None:
        """The stored bytes of ``ref`` if present and still intact (flash storage does rot)."""
        try:
            data = self.model_path(ref).read_bytes()
        except FileNotFoundError:
            return None
        return data if integrity.sha256_hex(data) == ref.sha256 else None

    @staticmethod
    def _offer_key(ref: ModelRef) -> str:
        """The exact offer: bytes and the pointer's claims about them. A refusal for a bad signature must not
        outlive a re-publish of the same bytes with a good one."""
        return hashlib.sha256(json.dumps(ref.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()

    def refusal(self, ref: ModelRef) -> str | None:
        """Why this exact offer was refused before, so a bad publish is not downloaded on every poll."""
        with self._lock:
            return self._state.get("refused", {}).get(self._offer_key(ref))

    # --- changing ---------------------------------------------------------------------

    def install(self, ref: ModelRef, verified: bytes) -> None:
        """Make ``ref`` (whose bytes were verified) active; the active one becomes the previous."""
        with self._lock:
            path = self.model_path(ref)
            if self.read_model(ref) is None:
                write_atomically(path, verified)
            active = self._ref("active")
            state = dict(self._state)
            if active is not None and active.sha256 != ref.sha256:
                state["previous"] = active.model_dump(mode="json")
            state["active"] = ref.model_dump(mode="json")
            self._save(state)
            self.partial_path(ref).unlink(missing_ok=True)
            self._collect_garbage()

    def rollback(self) -> ModelRef | None:
        """Swap the previous model back in (it was verified when installed); None if there is none."""
        with self._lock:
            previous = self._ref("previous")
            if previous is None or self.read_model(previous) is None:
                return None
            active = self._ref("active")
            self._save({**self._state, "active": previous.model_dump(mode="json"),
                        "previous": active.model_dump(mode="json") if active else None})
            return previous

    def remember_refusal(self, ref: ModelRef, reason: str) -> None:
        with self._lock:
            refused = {**self._state.get("refused", {}), self._offer_key(ref): reason}
            self._save({**self._state, "refused": dict(list(refused.items())[-20:])})  # bounded
            self.partial_path(ref).unlink(missing_ok=True)

    # --- internals --------------------------------------------------------------------

    def _ref(self, role: str) -> ModelRef | None:
        value = self._state.get(role)
        return ModelRef.model_validate(value) if value else None

    def _save(self, state: dict) -> None:
        write_atomically(self.directory / "state.json", json.dumps(state, indent=1).encode())
        self._state = state

    def _load_state(self) -> dict:
        try:
            state = json.loads((self.directory / "state.json").read_text())
            refs = {role: ModelRef.model_validate(state[role]) if state.get(role) else None for role in ("active", "previous")}
        except (FileNotFoundError, ValueError):
            return {}
        self._state = state
        # A file that rotted or vanished since it was installed must not stay active.
        intact = {role: ref for role, ref in refs.items() if ref is not None and self.read_model(ref) is not None}
        if "active" not in intact and "previous" in intact:
            intact = {"active": intact["previous"]}
        repaired = {**state, **{role: (intact[role].model_dump(mode="json") if role in intact else None)
                                for role in ("active", "previous")}}
        if repaired != state:
            write_atomically(self.directory / "state.json", json.dumps(repaired, indent=1).encode())
        return repaired

    def _collect_garbage(self) -> None:
        keep = {f"{ref.sha256}.tflite" for ref in (self._ref("active"), self._ref("previous")) if ref is not None}
        for path in (self.directory / "models").glob("*.tflite"):
            if path.name not in keep:
                path.unlink(missing_ok=True)

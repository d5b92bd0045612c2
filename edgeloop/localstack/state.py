"""What a local stack is made of, and the state file (``stack.json``) that records a started one.

Every other module of the package reads a stack through ``StackState``: its
ports and pids, where its logs and objects live, and the addresses clients need.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from shared.errors import EdgeloopError

FUNCTIONS = ("on_upload", "on_feedback", "check_drift", "launch_training")
EMULATORS = ("firestore", "pubsub", "storage", "auth")
STATE_FILE = "stack.json"


class StackError(EdgeloopError):
    """The local stack could not be started or is not running."""


@dataclass
class StackState:
    stack_id: str
    directory: str
    host: str
    project_id: str
    bucket: str
    ports: dict[str, int]
    pids: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0

    @property
    def path(self) -> Path:
        return Path(self.directory)

    def log_file(self, component: str) -> Path:
        return self.path / "logs" / f"{component}.log"

    def url(self, component: str) -> str:
        return f"http://{self.host}:{self.ports[component]}"

    def client_env(self) -> dict[str, str]:
        """What a process needs to talk to this stack with the standard clients.

        ``FIREBASE_AUTH_EMULATOR_HOST`` makes firebase-admin accept the Auth emulator's unsigned ID tokens and
        mint unsigned custom tokens: it belongs to the local stack's processes and clients only, never to a
        production environment.
        """
        auth = {"FIREBASE_AUTH_EMULATOR_HOST": f"{self.host}:{self.ports['auth']}"} if "auth" in self.ports else {}
        return {
            "FIRESTORE_EMULATOR_HOST": f"{self.host}:{self.ports['firestore']}",
            "PUBSUB_EMULATOR_HOST": f"{self.host}:{self.ports['pubsub']}",
            "STORAGE_EMULATOR_HOST": self.url("storage"),
            "GOOGLE_CLOUD_PROJECT": self.project_id,
            "EDGELOOP_PROJECT_ID": self.project_id,
            "EDGELOOP_BUCKET": self.bucket,
            **auth,
        }

    def save(self) -> None:
        (self.path / STATE_FILE).write_text(json.dumps(asdict(self), indent=2))


def load_state(directory: Path) -> StackState | None:
    """The stack recorded in ``directory``, or None if none was started there (or it was stopped cleanly)."""
    try:
        return StackState(**json.loads((Path(directory) / STATE_FILE).read_text()))
    except FileNotFoundError:
        return None

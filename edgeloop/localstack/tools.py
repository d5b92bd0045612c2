"""Finding the system pieces the local stack runs: Java, the Cloud SDK emulators, Node and firebase-tools."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from shared.errors import ConfigurationError

INSTALL_JAVA = "Java 17+ is needed by the emulators. Install it with: apt-get install -y default-jre-headless"
INSTALL_EMULATORS = (
    "The Google Cloud CLI emulators are needed. Install them with: "
    "apt-get install -y google-cloud-cli google-cloud-cli-firestore-emulator google-cloud-cli-pubsub-emulator "
    "(from Google's apt repository, see https://cloud.google.com/sdk/docs/install#deb), "
    "or with an existing SDK: gcloud components install cloud-firestore-emulator pubsub-emulator. "
    "Set EDGELOOP_GCLOUD_SDK_ROOT if the SDK lives elsewhere."
)
INSTALL_NODE = (
    "Node.js 20+ and npm are needed by the Firebase Auth emulator (firebase-tools). "
    "Install them with: apt-get install -y nodejs npm (or from https://nodejs.org), then run scripts/bootstrap.sh"
)
REPO_ROOT = Path(__file__).resolve().parents[2]
FIREBASE_CLI = REPO_ROOT / "node_modules/firebase-tools/lib/bin/firebase.js"


@dataclass(frozen=True)
class Tools:
    java: Path
    firestore_jar: Path
    pubsub_launcher: Path
    functions_framework: Path
    python: Path
    node: Path | None = None
    firebase_cli: Path | None = None


def sdk_root() -> Path | None:
    explicit = os.environ.get("EDGELOOP_GCLOUD_SDK_ROOT") or os.environ.get("CLOUDSDK_ROOT_DIR")
    if explicit:
        return Path(explicit)
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    return Path(os.path.realpath(gcloud)).parent.parent  # <root>/bin/gcloud


def find_tools() -> Tools:
    """Every executable the stack needs, or a ConfigurationError saying exactly what to install."""
    java = shutil.which("java")
    if java is None:
        raise ConfigurationError(INSTALL_JAVA)
    root = sdk_root()
    if root is None:
        raise ConfigurationError(INSTALL_EMULATORS)
    firestore_jar = root / "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
    pubsub_launcher = root / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"
    for needed in (firestore_jar, pubsub_launcher):
        if not needed.exists():
            raise ConfigurationError(f"{needed} is missing. {INSTALL_EMULATORS}")
    framework = Path(sys.executable).parent / "functions-framework"
    if not framework.exists():
        raise ConfigurationError(f"{framework} is missing; run scripts/bootstrap.sh to install the Python packages")
    node, firebase_cli = find_firebase_cli()
    return Tools(Path(java), firestore_jar, pubsub_launcher, framework, Path(sys.executable), node, firebase_cli)


def find_firebase_cli() -> tuple[Path, Path]:
    """Node and the pinned firebase-tools CLI (package.json), or a ConfigurationError saying what to install."""
    node = shutil.which("node")
    if node is None:
        raise ConfigurationError(INSTALL_NODE)
    if not FIREBASE_CLI.exists():
        raise ConfigurationError(f"{FIREBASE_CLI} is missing: run scripts/bootstrap.sh (npm ci installs the pinned "
                                 "firebase-tools from package-lock.json)")
    return Path(node), FIREBASE_CLI

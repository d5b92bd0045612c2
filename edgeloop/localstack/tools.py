"""Finding the system pieces the local stack runs: Java and the Cloud SDK emulators."""

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


@dataclass(frozen=True)
class Tools:
    java: Path
    firestore_jar: Path
    pubsub_launcher: Path
    functions_framework: Path
    python: Path


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
    return Tools(Path(java), firestore_jar, pubsub_launcher, framework, Path(sys.executable))

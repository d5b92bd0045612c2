import pytest

from edgeloop.localstack import tools
from shared.errors import ConfigurationError


def test_missing_emulators_name_the_exact_packages_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGELOOP_GCLOUD_SDK_ROOT", str(tmp_path))
    with pytest.raises(ConfigurationError) as error:
        tools.find_tools()
    message = str(error.value)
    assert "cloud-firestore-emulator.jar is missing" in message
    assert "apt-get install -y google-cloud-cli google-cloud-cli-firestore-emulator google-cloud-cli-pubsub-emulator" in message


def test_missing_java_names_the_package(monkeypatch):
    monkeypatch.setattr(tools.shutil, "which", lambda name: None)
    with pytest.raises(ConfigurationError, match="apt-get install -y default-jre-headless"):
        tools.find_tools()


def test_the_installed_sdk_is_found():
    found = tools.find_tools()
    assert found.firestore_jar.exists() and found.pubsub_launcher.exists() and found.functions_framework.exists()


def test_missing_firebase_tools_says_to_run_the_bootstrap(monkeypatch, tmp_path):
    monkeypatch.setattr(tools, "FIREBASE_CLI", tmp_path / "node_modules/firebase-tools/lib/bin/firebase.js")
    with pytest.raises(ConfigurationError, match="run scripts/bootstrap.sh"):
        tools.find_tools()


def test_missing_node_names_the_packages(monkeypatch):
    real_which = tools.shutil.which
    monkeypatch.setattr(tools.shutil, "which", lambda name: None if name == "node" else real_which(name))
    with pytest.raises(ConfigurationError, match="apt-get install -y nodejs npm"):
        tools.find_tools()


def test_the_pinned_firebase_tools_are_installed():
    found = tools.find_tools()
    assert found.node.exists() and found.firebase_cli.exists()

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

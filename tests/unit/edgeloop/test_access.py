"""A refused cloud call becomes one sentence an operator can act on, and a command's target is what it was told.

The exceptions are the client libraries' own classes (google.api_core, google.auth), raised by a fake
callable or by the real Storage client against a local HTTP server answering as Cloud Storage does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import typer
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from typer.testing import CliRunner

from edgeloop import target
from edgeloop.access import OPERATOR_ROLES, explain, service_of

REPO = Path(__file__).resolve().parents[3]
EMULATORS = {"FIRESTORE_EMULATOR_HOST": "127.0.0.1:1", "PUBSUB_EMULATOR_HOST": "127.0.0.1:2",
             "STORAGE_EMULATOR_HOST": "http://127.0.0.1:3"}


def raised(error: Exception) -> Exception:
    """``error`` as a caller catches it: raised by a callable, with its traceback."""
    def call() -> None:
        raise error

    try:
        call()
    except Exception as exc:  # noqa: BLE001 (that is the point)
        return exc
    raise AssertionError("not raised")


# --- what each refusal says ------------------------------------------------------------------------

@pytest.mark.parametrize("command, service, role", [
    ("status", "firestore", "roles/datastore.viewer"),
    ("runs", "firestore", "roles/datastore.viewer"),
    ("promote", "firestore", "roles/datastore.user"),
    ("rollback", "firestore", "roles/datastore.user"),
    ("retrain", "pubsub", "roles/pubsub.publisher"),
    ("retrain", "firestore", "roles/datastore.viewer"),
    ("dead-letters", "pubsub", "roles/pubsub.subscriber"),
])
def test_permission_denied_names_the_role_the_command_needs_on_the_service_that_refused(command, service, role):
    exc = raised(gexc.PermissionDenied("Missing or insufficient permissions."))
    message = explain(exc, command, "prod-1", service=service)
    assert role in message and f"`edgeloop {command}` needs" in message and "project prod-1" in message
    assert f"gcloud projects add-iam-policy-binding prod-1 --member=user:EMAIL --role={role}" in message
    assert "Missing or insufficient permissions." in message
    other = {n.role for n in OPERATOR_ROLES[command] if n.service != service} - {role}
    assert not [r for r in other if r in message]  # only what that service needs


def test_a_refusal_from_an_unknown_service_lists_everything_the_command_needs():
    message = explain(raised(gexc.Forbidden("403 denied")), "retrain", "prod-1")
    assert "roles/pubsub.publisher" in message and "roles/datastore.viewer" in message


def test_missing_application_default_credentials_say_how_to_log_in():
    exc = raised(auth_exceptions.DefaultCredentialsError("Your default credentials were not found."))
    message = explain(exc, "status", "prod-1")
    assert message.startswith("no Application Default Credentials: run `gcloud auth application-default login`")


@pytest.mark.parametrize("error", [
    auth_exceptions.RefreshError("Reauthentication is needed."),
    gexc.Unauthenticated("Request had invalid authentication credentials."),
])
def test_refused_or_expired_credentials_say_to_log_in_again(error):
    message = explain(raised(error), "runs", "prod-1")
    assert "gcloud auth application-default login` again" in message


def test_a_disabled_api_says_which_one_to_enable():
    exc = raised(gexc.PermissionDenied(
        "Cloud Firestore API has not been used in project prod-1 before or it is disabled. SERVICE_DISABLED"))
    message = explain(exc, "status", "prod-1", service="firestore")
    assert "the Firestore API is not enabled in project prod-1" in message
    assert "gcloud services enable firestore.googleapis.com --project prod-1" in message


def test_a_project_that_is_not_there_is_named():
    exc = raised(gexc.PermissionDenied("Permission denied on resource project nope-1."))
    assert explain(exc, "status", "nope-1").startswith("project nope-1 does not exist, or this account cannot use it")


def test_a_project_without_the_firestore_database_is_named():
    exc = raised(gexc.NotFound("The database (default) does not exist for project prod-1"))
    message = explain(exc, "status", "prod-1", service="firestore")
    assert message.startswith("project prod-1 has no Firestore database (default)")


def test_a_missing_topic_asks_whether_edgeloop_is_deployed_there():
    exc = raised(gexc.NotFound("Resource not found (resource=edgeloop-retrain-requests)."))
    message = explain(exc, "retrain", "prod-1", service="pubsub")
    assert "no such topic or subscription: is Edgeloop deployed there?" in message


def test_what_is_no_refused_cloud_call_is_left_alone():
    assert explain(raised(KeyError("x")), "status", "p") is None


# --- the real Storage client against a server answering as Cloud Storage does ------------------------

class _Refusing(BaseHTTPRequestHandler):
    status = 403

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        reason = "forbidden" if self.status == 403 else "notFound"
        text = ("op@example.com does not have storage.objects.get access to the Google Cloud Storage object."
                if self.status == 403 else "The specified bucket does not exist.")
        body = json.dumps({"error": {"code": self.status, "message": text,
                                     "errors": [{"message": text, "domain": "global", "reason": reason}]}}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def cloud_storage():
    """A Storage client pointed at a local server; ``answer(status)`` sets what the server refuses with."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Refusing,), {}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = storage.Client(project="prod-1", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": f"http://127.0.0.1:{server.server_port}"})

    def answer(status: int) -> storage.Client:
        server.RequestHandlerClass.status = status
        return client

    yield answer
    server.shutdown()
    server.server_close()


def test_a_refusal_raised_by_the_storage_client_is_attributed_to_cloud_storage(cloud_storage):
    with pytest.raises(gexc.Forbidden) as caught:
        cloud_storage(403).bucket("prod-1-edgeloop").blob("models/digits/v1/model.tflite").download_as_bytes(retry=None)
    assert service_of(caught.value) == "storage"
    message = explain(caught.value, "status", "prod-1", "prod-1-edgeloop")
    assert message.startswith("permission denied by Cloud Storage in project prod-1")
    assert "does not have storage.objects.get access" in message


def test_a_missing_bucket_says_to_give_the_deployed_one(cloud_storage):
    with pytest.raises(gexc.NotFound) as caught:
        cloud_storage(404).get_bucket("prod-1-edgeloop", retry=None)
    message = explain(caught.value, "report", "prod-1", "prod-1-edgeloop")
    assert message.startswith("bucket prod-1-edgeloop was not found in project prod-1: give the deployed one")


# --- a command ends with the sentence, on stderr -----------------------------------------------------

def test_a_decorated_command_ends_with_the_sentence_on_stderr_and_exit_code_1():
    app = typer.Typer()

    @app.callback()
    def main(context: typer.Context) -> None:
        target.command_started(context)
        target.set_target_options("prod-1", None)

    @app.command()
    @target.cloud_errors("promote")
    def promote(model: str) -> None:
        raise gexc.PermissionDenied("Missing or insufficient permissions.")

    result = CliRunner().invoke(app, ["promote", "digits"], env={"COLUMNS": "200"})
    assert result.exit_code == 1 and result.stdout == ""
    assert "error: permission denied by Google Cloud in project prod-1: `edgeloop promote` needs " \
           "roles/datastore.user" in result.stderr


def test_without_credentials_the_cli_says_how_to_log_in(tmp_path):
    """The whole remote path in a process of its own: no emulator variables, no ADC, no metadata server."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
           "NO_GCE_CHECK": "true", "COLUMNS": "80", "EDGELOOP_STACK_DIR": str(tmp_path / "stack")}
    done = subprocess.run([sys.executable, "-m", "edgeloop.cli", "--project", "prod-1", "runs"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: no Application Default Credentials: run `gcloud auth application-default login`" in \
        " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr and done.stdout == ""


# --- which target a command works on -----------------------------------------------------------------

@pytest.fixture
def options():
    yield target.set_target_options
    target.set_target_options(None, None)


def test_project_and_bucket_options_name_a_google_cloud_target(options):
    options("prod-1", "prod-data")
    found = target.resolve_target(None, env={})
    assert (found.project_id, found.bucket, found.google_cloud, found.stack) == ("prod-1", "prod-data", True, None)
    assert found.env() == {"GOOGLE_CLOUD_PROJECT": "prod-1", "EDGELOOP_PROJECT_ID": "prod-1",
                           "EDGELOOP_BUCKET": "prod-data"}


def test_without_bucket_the_target_takes_terraforms_bucket_name(options):
    options("prod-1", None)
    assert target.resolve_target(None, env={}).bucket == "prod-1-edgeloop"
    assert target.resolve_target(None, env={"EDGELOOP_BUCKET": "b"}).bucket == "b"


def test_the_environment_names_the_project_when_no_option_does(options):
    assert target.resolve_target(None, env={"GOOGLE_CLOUD_PROJECT": "g"}).project_id == "g"
    assert target.resolve_target(None, env={"GOOGLE_CLOUD_PROJECT": "g", "EDGELOOP_PROJECT_ID": "e"}).project_id == "e"


def test_emulator_variables_make_the_same_target_one_on_emulators(options):
    options("demo-x", "demo-x.firebasestorage.app")
    found = target.resolve_target(None, env=EMULATORS)
    assert not found.google_cloud and found.emulators == EMULATORS
    assert found.env() == {**EMULATORS, "GOOGLE_CLOUD_PROJECT": "demo-x", "EDGELOOP_PROJECT_ID": "demo-x",
                           "EDGELOOP_BUCKET": "demo-x.firebasestorage.app"}


def test_some_emulator_variables_but_not_all_are_refused(options):
    options("prod-1", None)
    with pytest.raises(target.TargetError, match="PUBSUB_EMULATOR_HOST, STORAGE_EMULATOR_HOST not"):
        target.resolve_target(None, env={"FIRESTORE_EMULATOR_HOST": "127.0.0.1:1"})


def test_a_project_and_a_stack_directory_together_are_refused(options, tmp_path):
    options("prod-1", None)
    with pytest.raises(target.TargetError, match="give one of them"):
        target.resolve_target(tmp_path, env={})


def test_no_project_and_no_stack_says_how_to_get_either(options, tmp_path):
    with pytest.raises(target.TargetError, match=r"start one with `edgeloop up`, or name a deployed project"):
        target.resolve_target(tmp_path, env={"EDGELOOP_PROJECT_ID": "ignored: --dir names the stack"})


def test_local_only_commands_say_project_is_not_used(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "EDGELOOP_STACK_DIR": str(tmp_path / "stack")}
    done = subprocess.run([sys.executable, "-m", "edgeloop.cli", "--project", "prod-1", "down"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert "`down` works on the local stack only; --project prod-1 is not used" in " ".join(done.stderr.split())


# --- one table of roles, in the code and in the README -------------------------------------------------

def test_the_readme_lists_the_roles_each_operator_command_needs():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Operating the deployed project from the CLI"):]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = line.split("|")
            for command in re.findall(r"`([a-z][a-z -]*)`", cells[1]):
                rows[command] = set(re.findall(r"roles/[A-Za-z.]+", cells[2]))
    assert rows == {command: {n.role for n in needs} for command, needs in OPERATOR_ROLES.items()}


def test_the_variables_up_printed_are_their_local_stacks(options, tmp_path, monkeypatch):
    from edgeloop.localstack.state import StackState
    from shared.config import get_settings

    recorded = StackState("s1", str(tmp_path), "127.0.0.1", "demo-x", "demo-x.firebasestorage.app",
                          {"firestore": 1, "pubsub": 2, "storage": 3})
    recorded.save()
    monkeypatch.setenv("EDGELOOP_STACK_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        exported = recorded.client_env()
        assert target.resolve_target(None, env=exported).stack == recorded
        assert target.resolve_target(None, env={**exported, "EDGELOOP_PROJECT_ID": "other"}).stack is None
        options("demo-x", None)  # --project: never the stack-state shortcut
        assert target.resolve_target(None, env=exported).stack is None
    finally:
        monkeypatch.delenv("EDGELOOP_STACK_DIR")
        get_settings.cache_clear()

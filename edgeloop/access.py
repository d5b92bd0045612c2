"""What an operator command needs on a deployed project, and what a refused call means for the operator.

Terraform grants roles to the stack's own service accounts only; an operator's account needs the roles
below on the project (README, "Deploying to Google Cloud", lists the same table; a test checks that).
A call the cloud refuses is turned into one sentence: no Application Default Credentials, a role the
command needs, a disabled API, a project, database, topic or bucket that is not there.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Optional

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exceptions


@dataclass(frozen=True)
class Need:
    service: str  # "firestore", "pubsub" or "storage"
    role: str
    why: str


# Per operator command: the least the caller's account needs on the project.
OPERATOR_ROLES: dict[str, tuple[Need, ...]] = {
    "status": (Need("firestore", "roles/datastore.viewer", "read models, versions, runs and drift reports"),),
    "runs": (Need("firestore", "roles/datastore.viewer", "read the runs"),),
    "report": (Need("firestore", "roles/datastore.viewer", "read versions, feedback tallies and drift reports"),),
    "promote": (Need("firestore", "roles/datastore.user", "move the version in a transaction"),),
    "rollback": (Need("firestore", "roles/datastore.user", "move the version in a transaction"),),
    "retrain": (Need("pubsub", "roles/pubsub.publisher", "publish the request to launch_training's topic"),
                Need("firestore", "roles/datastore.viewer", "follow the request to its run")),
    "model create": (Need("firestore", "roles/datastore.user", "write the model's pointer and control documents"),),
    "model list": (Need("firestore", "roles/datastore.viewer", "read the models and their settings"),),
    "model show": (Need("firestore", "roles/datastore.viewer", "read the model and its settings"),),
    "dataset import": (Need("storage", "roles/storage.objectCreator", "upload the images"),
                       Need("storage", "roles/storage.objectViewer", "list what was imported before"),
                       Need("firestore", "roles/datastore.user", "pause training while the images arrive; read "
                                                                  "on_upload's verdicts")),
    "dataset export": (Need("storage", "roles/storage.objectViewer", "read the manifest and its images"),
                       Need("firestore", "roles/datastore.viewer", "read the version")),
    "label": (Need("firestore", "roles/datastore.user", "list the captures; record each label in a transaction"),
              Need("storage", "roles/storage.objectViewer", "draw the contact sheet"),
              Need("pubsub", "roles/pubsub.publisher", "ask for a new-data run when the labels complete one")),
    "dead-letters": (Need("pubsub", "roles/pubsub.subscriber", "pull the dead-letter subscriptions"),
                     Need("pubsub", "roles/pubsub.publisher", "--replay: publish to the source topics again")),
}

SERVICES = {  # service -> (name in messages, its API, the client library's module prefixes)
    "firestore": ("Firestore", "firestore.googleapis.com", ("google.cloud.firestore",)),
    "pubsub": ("Pub/Sub", "pubsub.googleapis.com", ("google.cloud.pubsub", "google.pubsub")),
    "storage": ("Cloud Storage", "storage.googleapis.com", ("google.cloud.storage",)),
}

ADC_LOGIN = "gcloud auth application-default login"
# What explain() turns into a sentence; anything else is a bug and keeps its traceback.
CLOUD_ERRORS = (gexc.GoogleAPIError, auth_exceptions.GoogleAuthError)


def service_of(exc: BaseException) -> Optional[str]:
    """The service whose client library raised ``exc``, from the modules its traceback went through
    (the innermost one wins); None if no client library's frame is in it."""
    found = None
    traceback: Optional[TracebackType] = exc.__traceback__
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        for service, (_, _, prefixes) in SERVICES.items():
            if module.startswith(prefixes):
                found = service
        traceback = traceback.tb_next
    return found


def needs(command: str, service: Optional[str]) -> tuple[Need, ...]:
    """What ``command`` needs from ``service`` (everything it needs if the service is unknown)."""
    every = OPERATOR_ROLES.get(command, ())
    return tuple(n for n in every if n.service == service) or every


def _roles(needed: tuple[Need, ...]) -> str:
    return "; ".join(f"{n.role} ({n.why})" for n in needed) or "(no role listed for this command)"


def _message(exc: BaseException) -> str:
    return " ".join(str(getattr(exc, "message", None) or exc).split())[:300]


def explain(exc: BaseException, command: str, project: str, bucket: str = "",
            service: Optional[str] = None) -> Optional[str]:
    """One sentence on what went wrong and what to do, or None if ``exc`` is not a refused cloud call."""
    service = service or service_of(exc)
    name, api, _ = SERVICES.get(service or "", ("Google Cloud", "", ()))
    text = _message(exc)
    lowered = text.lower()
    if isinstance(exc, auth_exceptions.DefaultCredentialsError):
        return (f"no Application Default Credentials: run `{ADC_LOGIN}` (or set GOOGLE_APPLICATION_CREDENTIALS "
                f"to a service account's key file), then try again ({text})")
    if isinstance(exc, (auth_exceptions.RefreshError, gexc.Unauthenticated)):
        return (f"the Application Default Credentials were refused ({text}): run `{ADC_LOGIN}` again")
    if isinstance(exc, auth_exceptions.TransportError):
        return f"could not reach Google's authentication service: {text}"
    if isinstance(exc, gexc.Forbidden):  # PermissionDenied (gRPC) is one too
        if "service_disabled" in lowered or "has not been used in project" in lowered or "it is disabled" in lowered:
            return (f"the {name} API is not enabled in project {project}: "
                    f"`gcloud services enable {api or 'API'} --project {project}` (terraform apply enables it)")
        if "resource project" in lowered or "consumer_invalid" in lowered:
            return f"project {project} does not exist, or this account cannot use it: check --project ({text})"
        needed = needs(command, service)
        return (f"permission denied by {name} in project {project}: `edgeloop {command}` needs {_roles(needed)}. "
                f"Grant it with `gcloud projects add-iam-policy-binding {project} --member=user:EMAIL "
                f"--role={needed[0].role if needed else 'ROLE'}` ({text})")
    if isinstance(exc, gexc.NotFound):
        if service == "firestore" and "database" in lowered:
            return (f"project {project} has no Firestore database (default): is Edgeloop deployed there "
                    f"(infra/terraform), and is --project right? ({text})")
        if service == "pubsub":
            return (f"Pub/Sub in project {project} has no such topic or subscription: is Edgeloop deployed there? "
                    f"({text})")
        if service == "storage":
            return (f"bucket {bucket or '?'} was not found in project {project}: give the deployed one with "
                    f"--bucket (terraform output bucket) ({text})")
        return f"not found in {name} of project {project}: {text}"
    if isinstance(exc, (gexc.ServiceUnavailable, gexc.RetryError, gexc.DeadlineExceeded)):
        return f"{name} did not answer for project {project}: {text}"
    if isinstance(exc, gexc.GoogleAPIError):
        return f"{name} refused the request for project {project}: {text}"
    return None

"""No credentials in the repository: every git-tracked file is scanned.

Two scanners, because neither alone covers what this product handles:

* detect-secrets (Yelp's maintained scanner, requirements-dev.txt) with its
  default plugins: private keys, cloud and SaaS tokens, JWTs, basic-auth URLs,
  "password = ..." keywords, high-entropy strings.
* Focused patterns for Google credentials it has no plugin for: API keys
  (``AIza...``), service-account key JSON (``"private_key"`` /
  ``"private_key_id"``), OAuth access and refresh tokens and client secrets.

Every finding must be in ``ALLOWED`` with a reason and a check that the flagged
value is exactly the harmless one, so an allowlisted file cannot later hide a
real secret next to the string it was allowed for; detect-secrets' inline
allowlist comments are refused, so this table is the only allowlist. Generated secrets (the dev signing key,
test keys, unsigned emulator tokens) are made at run time, never committed;
``.gitignore`` keeps the local stack directory, Terraform state and tfvars out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[2]

def _golden_message_data(path: str) -> str:
    return json.loads((REPO / path).read_text())["data"]["message"]["data"]


def _harmless_json_payload(value: str) -> bool:
    """Base64 of a JSON document in which none of the credential patterns occurs."""
    text = base64.b64decode(value).decode("utf-8")
    json.loads(text)
    return not any(pattern.search(text) for pattern in GOOGLE_PATTERNS.values()) and "secret" not in text.lower()


# (path, detector type) -> (why it is not a secret, a check of the exact flagged value). Checks, not
# hashes of the values: a hex digest written here would itself be flagged as a high-entropy string.
ALLOWED: dict[tuple[str, str], tuple[str, Callable[[str], bool]]] = {
    ("tests/golden/gcs_notification_pubsub.json", "Base64 High Entropy String"): (
        "a Pub/Sub message's base64 data: a Storage object resource of the demo bucket",
        lambda v: v == _golden_message_data("tests/golden/gcs_notification_pubsub.json") and _harmless_json_payload(v),
    ),
    ("tests/golden/pubsub_push_retrain.json", "Base64 High Entropy String"): (
        'a Pub/Sub message\'s base64 data: {"model": "digits", "reason": "manual"}',
        lambda v: v == base64.b64encode(b'{"model": "digits", "reason": "manual"}').decode(),
    ),
    ("tests/unit/shared/test_integrity.py", "Hex High Entropy String"): (
        "the sha256 of empty input, a published constant the digest test compares with",
        lambda v: v == hashlib.sha256(b"").hexdigest(),
    ),
    ("client_sdk/auth.py", "Secret Keyword"): (
        "the placeholder Web API key the Firebase Auth emulator accepts (it checks no key); production passes the "
        "project's own, which is public by design in every Firebase app config",
        lambda v: v == "fake-api-key",
    ),
}

# Google credentials detect-secrets has no plugin for.
GOOGLE_PATTERNS = {
    "Google API key": re.compile(r"AIza[0-9A-Za-z_\-]{35}"),
    "service-account key JSON": re.compile(r'"private_key(_id)?"\s*:\s*"[^"]{8,}'),
    "Google OAuth access token": re.compile(r"\bya29\.[0-9A-Za-z_\-]{20,}"),
    "Google OAuth refresh token": re.compile(r"\b1//0[0-9A-Za-z_\-]{30,}"),
    "Google OAuth client secret": re.compile(r"\bGOCSPX-[0-9A-Za-z_\-]{20,}"),
    "PEM private key": re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----\s*[A-Za-z0-9+/=]{16,}"),
}


def _tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.decode()
    return sorted(name for name in listed.split("\0") if name and (REPO / name).is_file())


def _detect_secrets(files: list[str]) -> list[tuple[str, str, str, int]]:
    pytest.importorskip("detect_secrets", reason="detect-secrets is in requirements-dev.txt")
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    collection = SecretsCollection(root=str(REPO))
    with default_settings():
        collection.scan_files(*files, num_processors=1)
    return [
        (filename, secret.type, secret.secret_value, secret.line_number)
        for filename, secrets in collection.data.items()
        for secret in secrets
    ]


@pytest.fixture(scope="module")
def tracked() -> list[str]:
    files = _tracked_files()
    assert len(files) > 50 and "shared/integrity.py" in files
    return files


def test_detect_secrets_finds_nothing_beyond_the_justified_allowlist(tracked, monkeypatch):
    monkeypatch.chdir(REPO)
    findings = _detect_secrets(tracked)

    def allowed(name: str, kind: str, value: str) -> bool:
        entry = ALLOWED.get((name, kind))
        return entry is not None and entry[1](value)

    unexpected = [f"{name}:{line} {kind}" for name, kind, value, line in findings if not allowed(name, kind, value)]
    assert not unexpected, "possible secrets committed (remove them, or allowlist the exact value with a reason): " + ", ".join(unexpected)
    stale = set(ALLOWED) - {(name, kind) for name, kind, _, _ in findings}
    assert not stale, f"allowlist entries that match nothing any more (delete them): {sorted(stale)}"


def test_no_file_silences_the_scanner_inline(tracked):
    pragma = "pragma: allowlist" + " secret"
    silenced = [name for name in tracked if pragma in (REPO / name).read_bytes().decode("utf-8", errors="ignore")]
    assert not silenced, f"{silenced}: allowlist in ALLOWED here, with a reason, instead"


def test_no_google_credential_or_private_key_in_any_tracked_file(tracked):
    found = []
    for name in tracked:
        text = (REPO / name).read_bytes().decode("utf-8", errors="ignore")
        found += [f"{name}: {kind}" for kind, pattern in GOOGLE_PATTERNS.items() if pattern.search(text)]
    assert not found, found


def test_allowlisted_base64_payloads_decode_to_harmless_json():
    """The allowlisted entropy strings are message payloads: decode them and scan what they hold."""
    for name in ("tests/golden/gcs_notification_pubsub.json", "tests/golden/pubsub_push_retrain.json"):
        payload = base64.b64decode(json.loads((REPO / name).read_text())["data"]["message"]["data"])
        text = payload.decode("utf-8")
        json.loads(text)
        assert not any(pattern.search(text) for pattern in GOOGLE_PATTERNS.values()), name
        assert "token" not in text.lower() and "secret" not in text.lower(), name


@pytest.mark.parametrize(
    "sample, kind",
    [
        ("key = 'AIza" + "Sy" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r'", "Google API key"),
        ('{"type": "service_account", "private_key_id": "' + "0123456789abcdef" * 2 + '"}', "service-account key JSON"),
        ("Authorization: Bearer ya29." + "a0AfB_byC" * 4, "Google OAuth access token"),
        ("-----BEGIN " + "PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIGq0w9Yk0eEzvd+3T0", "PEM private key"),
        ("-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo", "PEM private key"),
    ],
)
def test_the_focused_patterns_catch_what_they_are_for(sample, kind):
    assert GOOGLE_PATTERNS[kind].search(sample)


def test_detect_secrets_catches_a_committed_signing_key(tmp_path, monkeypatch):
    """The scanner is live: a key like the trainer's, written to a file, is reported."""
    from shared import integrity

    (tmp_path / "leak.py").write_text(f'SIGNING_KEY = """{integrity.generate_private_key_pem()}"""\n')
    monkeypatch.chdir(tmp_path)
    pytest.importorskip("detect_secrets")
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    collection = SecretsCollection(root=str(tmp_path))
    with default_settings():
        collection.scan_files("leak.py", num_processors=1)
    assert "Private Key" in {secret.type for secrets in collection.data.values() for secret in secrets}


@pytest.mark.parametrize(
    "path",
    [".edgeloop/signing-key.pem", "infra/terraform/terraform.tfvars", "infra/terraform/terraform.tfstate",
     "infra/terraform/.terraform/providers/x"],
)
def test_local_secrets_and_state_are_git_ignored(path):
    assert subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO).returncode == 0, f"{path} is not ignored"

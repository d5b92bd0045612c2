"""End-user credentials for the Firestore emulator, which enforces the security rules.

The emulator accepts an unsigned Firebase ID token (``"alg": "none"``) as a
signed-in user; ``Authorization: Bearer owner`` acts as an admin and bypasses
the rules (how the functions' service accounts behave in production).
"""

from __future__ import annotations

import base64
import json

ADMIN = {"Authorization": "Bearer owner"}


def _part(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def user_token(uid: str, project: str) -> dict[str, str]:
    """Headers of a signed-in (anonymous-provider) Firebase user ``uid`` of ``project``."""
    claims = {
        "sub": uid,
        "user_id": uid,
        "aud": project,
        "iss": f"https://securetoken.google.com/{project}",
        "iat": 1700000000,
        "exp": 4000000000,
        "auth_time": 1700000000,
        "firebase": {"sign_in_provider": "anonymous"},
    }
    return {"Authorization": f"Bearer {_part({'alg': 'none', 'typ': 'JWT'})}.{_part(claims)}."}


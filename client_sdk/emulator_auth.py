"""ID tokens for the local emulators, which accept unsigned Firebase ID tokens.

Only for the local stack (``edgeloop device simulate``, tests): production apps
pass a provider of real Firebase Auth ID tokens (e.g. ``user.getIdToken()``).
"""

from __future__ import annotations

import base64
import json


def _part(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def unsigned_id_token(uid: str, project_id: str) -> str:
    """A token the Firestore emulator treats as signed-in user ``uid`` (anonymous provider)."""
    claims = {
        "sub": uid, "user_id": uid, "aud": project_id, "iss": f"https://securetoken.google.com/{project_id}",
        "iat": 1700000000, "exp": 4000000000, "auth_time": 1700000000, "firebase": {"sign_in_provider": "anonymous"},
    }
    return f"{_part({'alg': 'none', 'typ': 'JWT'})}.{_part(claims)}."

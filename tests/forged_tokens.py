"""Hand-made ID tokens, for tests that attack the security rules on purpose (and only those).

Every other test signs in through the stack's Auth emulator (``helpers.signed_in``).
The Auth emulator's own tokens are unsigned (``alg: none``) too, which is why the
emulators accept these: a forged token is refused in production by the signature
check, and locally only where identity is checked against the Auth emulator's
accounts (firebase-admin's ``verify_id_token(..., check_revoked=True)``).
"""

from __future__ import annotations

import base64
import json


def _part(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def forged_id_token(uid: str, project_id: str, **claims) -> str:
    """An unsigned token claiming to be user ``uid`` (anonymous provider), with any extra ``claims``."""
    body = {
        "sub": uid, "user_id": uid, "aud": project_id, "iss": f"https://securetoken.google.com/{project_id}",
        "iat": 1700000000, "exp": 4000000000, "auth_time": 1700000000, "firebase": {"sign_in_provider": "anonymous"},
        **claims,
    }
    return f"{_part({'alg': 'none', 'typ': 'JWT'})}.{_part(body)}."


def forged_headers(uid: str, project_id: str, **claims) -> dict[str, str]:
    return {"Authorization": f"Bearer {forged_id_token(uid, project_id, **claims)}"}

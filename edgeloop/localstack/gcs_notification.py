"""The Pub/Sub message GCS publishes for an object change (payload format JSON_API_V1).

https://cloud.google.com/storage/docs/pubsub-notifications describes the
attributes; the data is the object resource as the JSON API returns it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Mapping


def notification_message(
    resource: Mapping[str, Any],
    *,
    event_type: str = "OBJECT_FINALIZE",
    notification_config: str = "projects/_/buckets/{bucket}/notificationConfigs/1",
    overwrote_generation: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """(data, attributes) for one notification about ``resource``."""
    bucket = resource["bucket"]
    attributes = {
        "notificationConfig": notification_config.format(bucket=bucket),
        "eventType": event_type,
        "payloadFormat": "JSON_API_V1",
        "bucketId": bucket,
        "objectId": resource["name"],
        "objectGeneration": str(resource["generation"]),
        "eventTime": resource.get("updated") or datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
    }
    if overwrote_generation is not None:
        attributes["overwroteGeneration"] = str(overwrote_generation)
    return json.dumps(dict(resource), default=str).encode("utf-8"), attributes

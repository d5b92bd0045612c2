"""When a device downloads: the download policy and the conditions hooks.

Modelled on Firebase ML's ModelDownloader: ``LATEST`` waits for the newest
model, ``LOCAL`` uses the installed one (downloading only when there is none),
``LOCAL_WITH_BACKGROUND_UPDATE`` uses the installed one now and updates in the
background for next time. Conditions are the app's own hooks (the SDK cannot
know about Wi-Fi or charging on every platform); a download waits until all hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable


class DownloadPolicy(str, Enum):
    LATEST = "latest"
    LOCAL = "local"
    LOCAL_WITH_BACKGROUND_UPDATE = "local_with_background_update"


@dataclass(frozen=True)
class Conditions:
    wifi: Callable[[], bool] | None = None  # e.g. lambda: connectivity.is_unmetered()
    charging: Callable[[], bool] | None = None

    def unmet(self) -> list[str]:
        """Names of the conditions that do not hold now (empty: downloading is allowed)."""
        return [name for name, hook in (("wifi", self.wifi), ("charging", self.charging)) if hook is not None and not hook()]

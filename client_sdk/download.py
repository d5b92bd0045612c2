"""Download one model file into its partial file, resuming after interruptions.

Bytes go to ``partial/{sha256}.part`` as they arrive; a retry (in this call, or
after an app restart) asks for the rest with an HTTP Range request, so an
interrupted download never starts over. The object's total size is compared
with the pointer's promise as soon as the response headers say it, so a
truncated or padded object is refused before its body is read.
"""

from __future__ import annotations

from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from client_sdk.errors import ModelRefused, Offline, RefusalReason
from client_sdk.transport import Transport
from shared.config import Client
from shared.registry import ModelRef


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _attempt(transport: Transport, ref: ModelRef, partial: Path) -> None:
    have = _size(partial)
    if have > ref.size:  # left over from something else under this name: start clean
        partial.unlink()
        have = 0
    if have == ref.size:
        return
    with transport.download(ref.path, have) as download:
        if download.total is not None and download.total != ref.size:
            raise ModelRefused(
                RefusalReason.SIZE_MISMATCH, f"{ref.path} is {download.total} bytes, the pointer promised {ref.size}"
            )
        resumed = download.start == have and have > 0
        with open(partial, "ab" if resumed else "wb") as handle:
            for chunk in download.chunks:
                handle.write(chunk)
                if handle.tell() > ref.size:
                    raise ModelRefused(RefusalReason.SIZE_MISMATCH, f"{ref.path} sends more than the promised {ref.size} bytes")
    got = _size(partial)
    if got < ref.size:
        raise Offline(f"{ref.path}: the transfer ended after {got} of {ref.size} bytes")


def download_model(transport: Transport, ref: ModelRef, partial: Path, settings: Client) -> bytes:
    """The complete file's bytes (not yet verified); ``Offline`` if every attempt was cut short."""
    partial.parent.mkdir(parents=True, exist_ok=True)
    for attempt in Retrying(
        stop=stop_after_attempt(settings.download_attempts),
        wait=wait_exponential(multiplier=settings.backoff_initial_s, max=settings.backoff_max_s),
        retry=retry_if_exception_type(Offline),
        reraise=True,
    ):
        with attempt:
            _attempt(transport, ref, partial)
    return partial.read_bytes()

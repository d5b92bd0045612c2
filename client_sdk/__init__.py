"""The device-side library: poll, download, verify, swap, infer, capture, report."""

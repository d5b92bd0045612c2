"""The embedded local stack: emulators, the storage notifier and the functions."""

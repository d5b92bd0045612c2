"""One exception hierarchy for the project; narrow errors at the edges."""


class EdgeloopError(Exception):
    """Base class for every error Edgeloop raises on purpose."""


class MalformedEventError(EdgeloopError, ValueError):
    """An incoming event does not have the shape we accept.

    Handlers treat it as permanent: retrying the same bytes cannot succeed, so
    the event is acknowledged (and logged) instead of re-delivered.
    """


class InvalidObjectNameError(EdgeloopError, ValueError):
    """A Storage object name does not follow the bucket layout."""


class ConfigurationError(EdgeloopError):
    """The environment is missing something Edgeloop needs to run."""


class MalformedDocumentError(MalformedEventError):
    """A Firestore document holds a value that is not one of Firestore's typed shapes."""

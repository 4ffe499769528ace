"""Domain exceptions; each carries the message a user should read."""


class DomainError(Exception):
    """Base of every refusal the services raise on purpose."""


class PermissionDenied(DomainError):
    """The acting user's role or ownership does not allow the action."""


class NotFound(DomainError):
    """The named record does not exist (or the user may not know it does)."""


class ValidationFailed(DomainError):
    """Input was refused; the message says which field and why."""


class InvalidTransition(DomainError):
    """The workflow does not allow this step from the current state."""


class StaleVersion(DomainError):
    """Someone else changed the record first; reload and try again."""


class ImportRejected(DomainError):
    """A file could not be imported; nothing was written."""


class ReportUnavailable(DomainError):
    """A stored report is missing or fails its SHA-256 check and cannot be rebuilt."""

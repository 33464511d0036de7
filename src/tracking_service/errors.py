"""Domain errors: what went wrong in the service's own terms, free of HTTP.

Code below the API raises these; the API maps each kind to one problem+json status in one
place (`api/problems.py`), and commands map them to their exit messages. A subclass per kind
(not a status code on the error) keeps the domain ignorant of the transport.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every expected failure; `message` is safe to show to the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The thing asked for does not exist."""


class Conflict(DomainError):
    """The request contradicts the current state (a duplicate, a stale version)."""


class Unauthorized(DomainError):
    """No valid credentials came with the request."""


class Forbidden(DomainError):
    """Valid credentials that may not do this."""


class InvalidInput(DomainError):
    """A value the caller sent cannot be used; `field` names it (dotted path) when known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Unavailable(DomainError):
    """A dependency (database, carrier) cannot serve right now; trying later may work."""

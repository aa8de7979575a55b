"""CRUD of configuration objects (rules, silences, channels, SLOs): one module per object.

Every function takes an engine or connection and the caller's project id, and filters on
it: an object of another project is "not found". Problems a request body cannot show by
itself are raised as the two types below, which the API maps to 409 and 400.
"""

from __future__ import annotations


class Conflict(Exception):
    """The change clashes with what is stored: a name already taken, a built-in rule (409)."""


class InvalidReference(ValueError):
    """The body names something that does not exist in the project; the message names the
    field (400)."""

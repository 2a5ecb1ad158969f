"""The JSON API for the parents' mini-program: bearer tokens, children, care requests and published results.

Every route lives under `/api/v1`; the OpenAPI 3.1 document is at `/api/v1/openapi.json`. The API never reads
the browser session: a request is authenticated by its `Authorization: Bearer <token>` header only, so the
blueprint is exempt from CSRF protection.
"""

from __future__ import annotations

from webapp.api import routes as routes  # registers the routes on the blueprint
from webapp.api.common import bp

__all__ = ["bp"]

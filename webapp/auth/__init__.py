"""Sign-in, registration, sign-out and the language switch."""

from __future__ import annotations

from webapp.auth.routes import bp

__all__ = ["bp"]

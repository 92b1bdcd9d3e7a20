"""The HTTP API for CI: `farm api` serves create_app(settings) (see docs/api.md)."""

from farm.api.app import ApiContext, create_app

__all__ = ["ApiContext", "create_app"]

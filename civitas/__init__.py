"""The Civitas service: settings, database, keys, OAuth2, the HTTP API, CLI and the city demo."""

__version__ = "0.1.0"

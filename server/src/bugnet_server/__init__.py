"""Bugnet's server: receives events over the Sentry protocol, groups them into issues, and
serves them (web UI, REST API, alerts)."""

__version__ = "0.1.0"

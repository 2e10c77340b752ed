"""Reliability and security: hostile third-party plug-ins cannot take the app or the case down."""

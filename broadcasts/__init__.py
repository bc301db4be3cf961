"""Scheduled bulletins, alerts and the outbox sender (later issues)."""

"""Schema, engine and repositories; imports nothing else of the project."""

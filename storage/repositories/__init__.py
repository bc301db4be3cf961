"""Plain async repository functions: they take a session and never commit."""

"""Configuration, command line, wiring and channels."""

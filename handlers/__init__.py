"""The flows, written once for every channel."""

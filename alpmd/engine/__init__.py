"""The engine: libalpm's job in Python, with no D-Bus, terminal or global state."""

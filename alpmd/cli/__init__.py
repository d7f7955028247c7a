"""Command-line front ends: ``alpm`` (pacman-compatible, in-process engine) and ``alpmctl``."""

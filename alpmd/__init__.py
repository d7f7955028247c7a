"""alpmd: a package-management library and daemon for ALPM systems."""

__version__ = "0.1.0"

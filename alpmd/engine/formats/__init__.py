"""ALPM on-disk formats: one module per format, each a pure parse/write pair."""

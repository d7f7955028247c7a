"""The alpmd daemon: org.alpm on the system bus. Translation only: the work is the engine's."""

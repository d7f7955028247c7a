"""Test helpers shared by the suite and the benchmarks.

* :mod:`alpmd.testing.pkgbuild` builds real package archives (what makepkg
  would produce) that Debian's pacman installs;
* :mod:`alpmd.testing.oracle` runs that pacman on a throwaway root.

Nothing is imported here, so that importing one helper never drags in the other.
"""

"""alpmd: a package-management library and daemon for ALPM systems."""

__version__ = "0.1.0"

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (a few milliseconds of every
#: ``alpm`` command's start-up): ``if TYPE_CHECKING:`` blocks hold what only the type
#: checker needs (mypy treats any name ``TYPE_CHECKING`` as true).
TYPE_CHECKING = False

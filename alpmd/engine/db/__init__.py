"""Package databases: the local one (what is installed) and the sync ones (repositories).

Both offer the same queries (``packages``, ``get``, ``groups``) over lazily
loaded :class:`~alpmd.engine.package.Package` objects; storage sits behind
:class:`~alpmd.engine.db.backend.DatabaseBackend`. The local database lives in
pacman's files layout (:class:`LocalFilesBackend`) or in one SQLite file
(:class:`LocalSqliteBackend`); :mod:`~alpmd.engine.db.stores` picks one and
:mod:`~alpmd.engine.db.convert` moves a root from one to the other. Sync
databases are read from their archives through a parsed snapshot.

The package itself imports nothing: a command loads only the modules it uses
(``-Q`` on the files store never imports :mod:`sqlite3`).
"""

"""Repository management (``alpm-repo``): a tree of repositories, a package pool,
repo-add-compatible databases, a tracking database and atomic, journaled changes.

``tree`` opens and creates trees, ``ops`` holds the commands, ``txn`` the lock,
journal and switch, ``incoming`` checks package files, ``tracking`` stores what
is where, ``dbarchive`` writes the database archives, ``config`` reads
``alpm-repo.conf``.
"""

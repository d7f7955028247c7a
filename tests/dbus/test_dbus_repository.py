"""org.alpm.Repository1 on a daemon whose alpmd.conf names no repository tree (the default):
every call is refused with a clear NotFound, before polkit or any descriptor is involved.
The interface with a tree is tested in tests/repo/test_dbus.py."""

from __future__ import annotations

from alpmd.testing.dbusenv import DBusEnv

R = ("org.alpm", "/org/alpm", "org.alpm.Repository1")


def test_no_tree_configured_is_not_found(daemon: DBusEnv, client_user: str) -> None:
    for args in (("List", "ssa{sv}", "", "", "0"), ("History", "sa{sv}", "", "0"),
                 ("Remove", "ssasa{sv}", "core", "x86_64", "1", "pkg", "0"),
                 ("Move", "sssasa{sv}", "testing", "core", "any", "1", "pkg", "0"),
                 ("ListRepositories",)):
        out = daemon.busctl("call", *R, *args, user=client_user, check=False)
        assert out.returncode != 0, args
        assert "db-not-found: alpmd serves no repository tree" in out.stderr, (args, out.stderr)
        assert "RepositoryTree" in out.stderr
    tree = daemon.busctl("get-property", *R, "Tree", user=client_user)
    assert tree.stdout.strip() == 's ""'

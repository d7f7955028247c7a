"""What polkit is told of a release: an architecture-independent package lands in every
architecture of the repository, so a rule limited to one architecture must not let it in
(attack round 6: the details named only the architecture the call gave)."""

from __future__ import annotations

from alpmd.dbus.repository import release_details


def test_a_release_of_any_package_names_the_architecture_any() -> None:
    one = release_details("testing", "x86_64", ["foo-1.0-1-x86_64.pkg.tar.zst"])
    assert one == {"org.alpm.repository": "testing", "org.alpm.architecture": "x86_64",
                   "org.alpm.files": "foo-1.0-1-x86_64.pkg.tar.zst",
                   "org.alpm.packages": "foo"}
    mixed = release_details("testing", "x86_64", ["foo-1.0-1-x86_64.pkg.tar.zst",
                                                  "bar-any-2.0-1-any.pkg.tar.xz"])
    assert mixed["org.alpm.architecture"] == "any"
    assert mixed["org.alpm.packages"] == "foo bar-any"
    # a name merely containing "any" is no architecture-independent package
    named = release_details("testing", "x86_64", ["company-1.0-1-x86_64.pkg.tar.zst"])
    assert named["org.alpm.architecture"] == "x86_64"

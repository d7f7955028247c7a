"""Bulk reads of one-line fields (``%DESC%``) from local ``desc`` entries.

``-Qs`` searches names, descriptions, provisions and groups of every installed
package; those columns are read section by section (``str.find``) instead of
parsing each whole entry, and must equal what the full parse gives.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from alpmd.engine.db.local import LocalDatabase, _find_lists, _list_specs
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.sections import scan
from alpmd.testing.repogen import generate_repo, make_local_db

SEARCH_FIELDS = ("desc", "provides", "groups")

_PIECES = ["%DESC%", "%PROVIDES%", "%GROUPS%", "%NAME%", "%XYZ%", "", "foo", "a b",
           "%DESC% ", "x\r", "%PROVIDES%\t", "%GROUPS%"]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14), st.booleans())
def test_find_single_agrees_with_scan(lines: list[str], final_newline: bool) -> None:
    text = "\n".join(lines) + ("\n" if final_newline else "")
    specs = _list_specs(SEARCH_FIELDS)
    assert specs is not None
    fast = _find_lists(text, specs)
    try:
        got = scan(text, specs, "test", ErrorCode.DB_INVALID)
    except AlpmError:
        assert fast is None  # a header without its value line is the scanner's to refuse
        return
    if fast is None:
        return  # left to the scanner
    assert fast == {"desc": got.get("desc"), "provides": got.get("provides") or [],
                    "groups": got.get("groups") or []}


def test_find_single_reads_empty_and_missing_descriptions() -> None:
    specs = _list_specs(SEARCH_FIELDS)
    assert specs is not None
    assert _find_lists("%NAME%\nfoo\n\n%DESC%\n\n%GROUPS%\ng\n\n", specs) == {
        "desc": "", "provides": [], "groups": ["g"]}
    assert _find_lists("%NAME%\nfoo\n\n%GROUPS%\ng\n\n", specs) == {
        "desc": None, "provides": [], "groups": ["g"]}
    assert _find_lists("%NAME%\nfoo\n\n%DESC%\n", specs) is None


def test_local_search_columns_match_full_metadata(tmp_path: Path) -> None:
    metas = generate_repo(5, 300)
    local = make_local_db(tmp_path, metas, installed=90, outdated=10, seed=5,
                          with_files=False)
    assert len(local) == 90
    names, cols = LocalDatabase(str(tmp_path)).columns(SEARCH_FIELDS)
    full = LocalDatabase(str(tmp_path))
    assert names == sorted(m.name for m in local)
    assert any(cols["desc"]) and any(cols["groups"])
    for i, name in enumerate(names):
        pkg = full.get(name)
        assert pkg is not None
        assert cols["desc"][i] == pkg.meta.desc
        assert list(cols["provides"][i]) == list(pkg.meta.provides)
        assert list(cols["groups"][i]) == list(pkg.meta.groups)

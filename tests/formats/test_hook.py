"""alpm hook files: parse/write round trip, libalpm's wordsplit and its errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.hook import (
    Action,
    Hook,
    HookOp,
    HookWhen,
    Trigger,
    TriggerType,
    parse_hook,
    quote_word,
    validate_hook,
    wordsplit,
    write_hook,
)

SAMPLE = """\
# a comment
[Trigger]
Operation = Install
Operation = Upgrade
Type = File
Target = usr/lib/modules/*/vmlinuz
Target = !usr/lib/modules/extramodules-*

[Trigger]
Type = Package
Operation = Remove
Target = linux

[Action]
Description = Updating linux initcpios...
When = PostTransaction
Exec = /usr/share/libalpm/scripts/mkinitcpio-install "a b" c\\d
Depends = mkinitcpio
NeedsTargets
"""


def test_parse_sample() -> None:
    hook = parse_hook(SAMPLE)
    assert hook.triggers == [
        Trigger(TriggerType.PATH, HookOp.INSTALL | HookOp.UPGRADE,
                ["usr/lib/modules/*/vmlinuz", "!usr/lib/modules/extramodules-*"]),
        Trigger(TriggerType.PACKAGE, HookOp.REMOVE, ["linux"]),
    ]
    a = hook.action
    assert a.when is HookWhen.POST and a.needs_targets and not a.abort_on_fail
    assert a.exec == ["/usr/share/libalpm/scripts/mkinitcpio-install", "a b", "c\\d"]
    assert a.depends == ["mkinitcpio"] and a.description == "Updating linux initcpios..."
    assert validate_hook(hook) == []
    assert parse_hook(write_hook(hook)) == hook


def test_wordsplit_as_libalpm() -> None:
    assert wordsplit("  a  'b c'  \"d\\\"e\" f\\'g h\\i ") == ["a", "b c", 'd"e', "f'g", "h\\i"]
    assert wordsplit("x'y'z") == ["xyz"]
    assert wordsplit("") == []
    with pytest.raises(ValueError):
        wordsplit("'open")


@pytest.mark.parametrize("text, message", [
    ("[Trigger]\nFoo = bar\n", "invalid option Foo"),
    ("[Nope]\n", "invalid section Nope"),
    ("Exec = x\n", "invalid option Exec"),
    ("[Trigger]\nOperation = Frobnicate\n", "invalid value Frobnicate"),
    ("[Trigger]\nType = Dir\n", "invalid value Dir"),
    ("[Action]\nWhen = Later\n", "invalid value Later"),
    ("[Action]\nExec = 'unbalanced\n", "invalid value 'unbalanced"),
])
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(AlpmError) as info:
        parse_hook(text, "x.hook")
    assert info.value.code is ErrorCode.CONFIG_INVALID and message in str(info.value)


def test_validation() -> None:
    assert validate_hook(parse_hook("")) == []  # trigger-less: a mask, valid
    errs = validate_hook(parse_hook("[Trigger]\n[Action]\n"), "x.hook")
    assert errs == ["Missing trigger targets in hook: x.hook",
                    "Missing trigger type in hook: x.hook",
                    "Missing trigger operation in hook: x.hook",
                    "Missing Exec option in hook: x.hook",
                    "Missing When option in hook: x.hook"]
    hook = parse_hook("[Trigger]\nType=Package\nOperation=Install\nTarget=*\n"
                      "[Action]\nWhen=PostTransaction\nExec=/bin/true\nAbortOnFail\n"
                      "When=PostTransaction\n")
    assert validate_hook(hook, "x.hook") == []
    assert any("AbortOnFail set for PostTransaction" in w for w in hook.warnings)
    assert any("overwriting previous definition of When" in w for w in hook.warnings)


_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(
    lambda s: s == s.strip(" \t\n\r\v\f"))
_word = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
                max_size=8)


@given(st.lists(_word, max_size=5))
@settings(max_examples=300, deadline=None)
def test_quote_word_round_trip(words: list[str]) -> None:
    assert wordsplit(" ".join(quote_word(w) for w in words)) == words


@given(
    st.lists(st.builds(Trigger, st.sampled_from(list(TriggerType)),
                       st.sampled_from([HookOp.INSTALL, HookOp.REMOVE,
                                        HookOp.INSTALL | HookOp.UPGRADE | HookOp.REMOVE]),
                       st.lists(_text, min_size=1, max_size=3)), max_size=3),
    st.builds(Action, st.sampled_from(list(HookWhen)), st.lists(_word, min_size=1, max_size=4),
              st.none() | _text, st.lists(_text, max_size=2), st.booleans(), st.booleans()),
)
@settings(max_examples=200, deadline=None)
def test_write_parse_round_trip(triggers: list[Trigger], action: Action) -> None:
    hook = Hook(triggers, action)
    assert parse_hook(write_hook(hook)) == hook

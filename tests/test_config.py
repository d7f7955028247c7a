"""pacman.conf parsing against pacman-conf 6.0.2, Debian's real one.

Every configuration of the corpus (tests/data/config/*.conf, read from that
directory so relative ``Include`` paths work as they do for pacman) is given to
``pacman-conf`` and to us: the printed configuration, each ``-r REPO``, the
``--repo-list``, the warned-about lines and the fatal errors must agree.  The
expected values come from pacman-conf, never from our implementation; the only
deliberate difference is the pacman 7 keys, which we accept and 6.0.2 warns about.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alpmd.engine.config import (
    DEFAULT_SIGLEVEL,
    MAX_INCLUDE_DEPTH,
    CleanMethod,
    Config,
    ConfigWarning,
    SigCheck,
    SigLevel,
    SigLevelSpec,
    SigPolicy,
    SigTrust,
    Usage,
    derive_config,
    load_config,
    parse_config,
    parse_siglevel,
    render_pacman_conf,
    render_repo_list,
    split_xfer_command,
)
from alpmd.engine.errors import AlpmError, ErrorCode

CORPUS = Path(__file__).resolve().parent / "data" / "config"
CORPUS_FILES = sorted(p.name for p in CORPUS.glob("*.conf"))
PACMAN_CONF = shutil.which("pacman-conf")
MACHINE = os.uname().machine

needs_pacman_conf = pytest.mark.skipif(PACMAN_CONF is None, reason="pacman-conf is not installed")

# Keys pacman 7 added: pacman-conf 6.0.2 warns about them and ignores them; we take them.
PACMAN7_OPTION_KEYS = {
    "DownloadUser",
    "DisableSandbox",
    "DisableSandboxFilesystem",
    "DisableSandboxSyscalls",
}
PACMAN7_REPO_KEYS = {"CacheServer"}
_WARNING = re.compile(
    r"warning: config file (.*), line (\d+): directive '(.*)' in section '(.*)' not recognized\."
)


@dataclasses.dataclass
class Oracle:
    """What pacman-conf said about one file."""

    ok: bool
    stdout: bytes
    error: str | None
    warnings: list[str]


def pacman_conf(path: str, *args: str, cwd: Path = CORPUS) -> subprocess.CompletedProcess[bytes]:
    assert PACMAN_CONF is not None
    return subprocess.run(
        [PACMAN_CONF, "-c", path, *args], cwd=cwd, capture_output=True, timeout=30, check=False
    )


def ask_oracle(path: str, *args: str, cwd: Path = CORPUS) -> Oracle:
    proc = pacman_conf(path, *args, cwd=cwd)
    stderr = proc.stderr.decode("utf-8", "surrogateescape").split("\n")  # not on \r
    errors = [line.removeprefix("error: ") for line in stderr if line.startswith("error: ")]
    warnings = []
    for line in stderr:
        m = _WARNING.fullmatch(line)
        if m is None:
            continue
        key, section = m.group(3), m.group(4)
        if (section == "options" and key in PACMAN7_OPTION_KEYS) or (
            section != "options" and key in PACMAN7_REPO_KEYS
        ):
            continue  # a pacman 7 key: we accept it without a word
        warnings.append(line.removeprefix("warning: "))
    return Oracle(proc.returncode == 0, proc.stdout, errors[0] if errors else None, warnings)


def ours(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def check_file(path: str, cwd: Path = CORPUS, root: str | None = None) -> Config | None:
    """Compare everything pacman-conf says about ``path`` with what we say; our Config."""
    extra = ("-R", root) if root is not None else ()
    oracle = ask_oracle(path, *extra, cwd=cwd)
    old = os.getcwd()
    os.chdir(cwd)
    try:
        try:
            cfg = load_config(path, root_override=root)
        except AlpmError as e:
            assert not oracle.ok, f"we failed ({e}) where pacman-conf succeeded"
            assert e.code in (ErrorCode.CONFIG_INVALID, ErrorCode.NOT_A_FILE)
            assert str(e) == oracle.error
            return None
    finally:
        os.chdir(old)
    assert oracle.ok, f"pacman-conf failed ({oracle.error}) where we succeeded"
    assert ours(render_pacman_conf(cfg)) == oracle.stdout
    assert [str(w) for w in cfg.warnings] == oracle.warnings
    assert ours(render_repo_list(cfg)) == pacman_conf(path, *extra, "--repo-list", cwd=cwd).stdout
    for name in dict.fromkeys(r.name for r in cfg.repos):
        assert (
            ours(render_pacman_conf(cfg, name))
            == pacman_conf(path, *extra, "-r", name, cwd=cwd).stdout
        )
    return cfg


# --------------------------------------------------------------------------- the corpus


def test_corpus_is_large_enough() -> None:
    good = [f for f in CORPUS_FILES if not f.startswith("err-")]
    bad = [f for f in CORPUS_FILES if f.startswith("err-")]
    assert len(good) >= 25 and len(bad) >= 10


@pytest.mark.oracle
@needs_pacman_conf
@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_matches_pacman_conf(name: str) -> None:
    cfg = check_file(name)
    assert (cfg is None) == name.startswith("err-")


@pytest.mark.oracle
@needs_pacman_conf
@pytest.mark.parametrize(
    "name",
    [
        "defaults.conf",
        "rootdir.conf",
        "rootdir-dbpath.conf",
        "rootdir-logfile.conf",
        "every-option.conf",
        "empty.conf",
    ],
)
@pytest.mark.parametrize("root", ["/mnt/alt", "/mnt/alt/", "/", ""])
def test_root_override_matches_pacman_conf_R(name: str, root: str) -> None:
    check_file(name, root=root)


# --------------------------------------------------------------------------- pacman 7 keys


@pytest.mark.oracle
@needs_pacman_conf
def test_pacman7_keys_are_ours_and_unknown_to_6() -> None:
    old = os.getcwd()
    os.chdir(CORPUS)
    try:
        cfg = load_config("pacman7.conf")
        split = load_config("pacman7-split.conf")
    finally:
        os.chdir(old)
    assert cfg.download_user == "alpm"  # the first one, like the other single values
    assert cfg.disable_sandbox and cfg.disable_sandbox_filesystem and cfg.disable_sandbox_syscalls
    core = cfg.repo("core")
    assert core is not None
    assert core.cache_servers == ["http://cache.example/core/os/x86_64"]
    assert core.servers == ["http://s.example/core/os/x86_64"]
    # The only warning left is a real one: Architecture inside a repo section.
    assert cfg.warnings == [
        ConfigWarning(
            "pacman7.conf", 9, "directive 'Architecture' in section 'core' not recognized."
        )
    ]
    assert split.disable_sandbox_filesystem and not split.disable_sandbox_syscalls
    assert not split.disable_sandbox and split.warnings == []
    extra = split.repo("extra")
    assert extra is not None
    assert extra.cache_servers == ["http://c1.example/extra", "http://c2.example/aarch64/extra"]

    # pacman-conf 6.0.2 warns about exactly those lines, and prints the same text as we do.
    raw = pacman_conf("pacman7.conf").stderr.decode()
    warned = {
        int(n)
        for n in re.findall(
            r"line (\d+): directive '(?:DownloadUser|DisableSandbox|CacheServer)'", raw
        )
    }
    assert warned == {2, 3, 4, 7}

    assert render_pacman_conf(cfg, "core", pacman7=True) == (
        "Usage = All\nCacheServer = http://cache.example/core/os/x86_64\n"
        "Server = http://s.example/core/os/x86_64\n"
    )
    full = render_pacman_conf(split, pacman7=True).splitlines()
    assert full.index("DisableSandboxFilesystem") == full.index("ParallelDownloads = 1") - 1
    assert "DownloadUser = alpm" in render_pacman_conf(cfg, pacman7=True).splitlines()
    assert "DownloadUser = alpm" not in render_pacman_conf(cfg).splitlines()


# --------------------------------------------------------------------------- generated files


def _write(directory: Path, name: str, data: bytes) -> str:
    (directory / name).write_bytes(data)
    return name


@pytest.mark.oracle
@needs_pacman_conf
@pytest.mark.parametrize(
    "data",
    [
        # ini.c reads 4095 bytes at a time: the rest of a long line is a line of its own.
        b"[options]\nHoldPkg = " + b"a" * 4100 + b" b\n",
        b"[options]\nHoldPkg = " + b"a" * 4080 + b" bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb = zz\nFoo\n",
        b"[options]\n" + b"H" * 4094 + b"\nFoo\n",
        b"[options]\n" + b"H" * 4095 + b"\nFoo\n",
        b"[options]\n" + b"H" * 4096 + b"\nFoo\n",
        # A NUL ends the line for C; what follows on that line is lost.
        b"[options]\nHoldPkg = a\x00b c\nFoo\n",
        b"[opt\x00ions]\nHoldPkg = a\n",
        # Bytes that are not UTF-8, and whitespace C does not trim.
        b"[options]\nHoldPkg = \xff\xfe a\x85 \xa0\n[r\xe9po]\nServer = http://\xc3\xa9/$repo\n",
        b"[options]\nHoldPkg = a\x0bb\x0c\n\x0b[core]\x0c\nServer = x\n",
        # A carriage return alone is not a line end.
        b"[options]\rHoldPkg = a\n",
        b"[options]\nHoldPkg = a\rb\n",
        b"\xef\xbb\xbf[options]\nHoldPkg = bom\n",
        b"[core]\n\xff\r$arch=x\x0cy \xc3\xa9\n\r",
    ],
)
def test_odd_bytes_match_pacman_conf(tmp_path: Path, data: bytes) -> None:
    check_file(_write(tmp_path, "odd.conf", data), cwd=tmp_path)


@pytest.mark.oracle
@needs_pacman_conf
@pytest.mark.parametrize("depth", [MAX_INCLUDE_DEPTH - 1, MAX_INCLUDE_DEPTH, MAX_INCLUDE_DEPTH + 1])
def test_include_depth_limit_matches_pacman_conf(tmp_path: Path, depth: int) -> None:
    for i in range(depth):
        _write(tmp_path, f"inc{i}.conf", f"Include = inc{i + 1}.conf\n".encode())
    _write(tmp_path, f"inc{depth}.conf", b"HoldPkg = deepest\n")
    _write(tmp_path, "main.conf", b"[options]\nInclude = inc0.conf\n")
    cfg = check_file("main.conf", cwd=tmp_path)
    assert (cfg is not None) == (depth < MAX_INCLUDE_DEPTH)


@pytest.mark.oracle
@needs_pacman_conf
def test_include_of_dot_files_matches_pacman_conf(tmp_path: Path) -> None:
    # glibc's glob lets ".*" match "." and "..": directories, read as empty files.
    (tmp_path / "d").mkdir()
    _write(tmp_path, "main.conf", b"[options]\nInclude = d/.*\nCheckSpace\n")
    assert check_file("main.conf", cwd=tmp_path) is not None


_GLOB_NAMES = ["1b.conf", "]b.conf", "a-b.conf", "a*b.conf", "ab.conf", "x\\y.conf", ".dot.conf"]


@pytest.mark.oracle
@needs_pacman_conf
@pytest.mark.parametrize(
    "pattern",
    [
        "inc/*",
        "inc/*.conf",
        "inc/a\\*b.conf",
        "inc/a\\b.conf",
        "inc/x\\y.conf",
        "inc/x\\\\y*",
        "inc/[a]\\*b.conf",
        "inc/a[*]b.conf",
        "inc/a[]b.conf",
        "inc/a[b.conf",
        "inc/a[!x]b.conf",
        "inc/[^a]*",
        "inc/[[:alpha:]]b.conf",
        "inc/[[:digit:]]*",
        "inc/[[:foo:]]*",
        "inc/[!z-a]*",
        "inc/[z-a]*",
        "inc/[]a]b.conf",
        "inc/[!]]*",
        "inc/a[-*]b.conf",
        "inc/?b.conf",
        "inc/.*",
        "inc/\\.*",
        "inc/[.]*",
        "i*/a*",
        "inc//*b.conf",
        "inc/",
        "./inc/1*",
        "inc/ab.conf\\",
    ],
)
def test_include_globs_match_pacman_conf(tmp_path: Path, pattern: str) -> None:
    # glibc's glob: escapes, [!..] and [^..], classes, dot files, bytewise order.
    (tmp_path / "inc").mkdir()
    for name in _GLOB_NAMES:
        _write(tmp_path / "inc", name, f"HoldPkg = {name}\nUnknown{len(name)}\n".encode())
    _write(tmp_path, "main.conf", f"[options]\nInclude = {pattern}\n".encode())
    check_file("main.conf", cwd=tmp_path)


# --------------------------------------------------------------------------- fuzzing

_KEYS = [
    "RootDir",
    "DBPath",
    "CacheDir",
    "HookDir",
    "GPGDir",
    "LogFile",
    "HoldPkg",
    "IgnorePkg",
    "IgnoreGroup",
    "NoUpgrade",
    "NoExtract",
    "Architecture",
    "XferCommand",
    "UseSyslog",
    "Color",
    "CheckSpace",
    "VerbosePkgLists",
    "DisableDownloadTimeout",
    "ILoveCandy",
    "NoProgressBar",
    "ParallelDownloads",
    "CleanMethod",
    "SigLevel",
    "LocalFileSigLevel",
    "RemoteFileSigLevel",
    "Server",
    "Usage",
    "Include",
    "Frob",
    "usage",
    "",
]
_WORDS = [
    "Never",
    "Optional",
    "Required",
    "TrustedOnly",
    "TrustAll",
    "PackageNever",
    "PackageOptional",
    "PackageRequired",
    "PackageTrustAll",
    "DatabaseNever",
    "DatabaseRequired",
    "DatabaseTrustedOnly",
    "Sync",
    "Search",
    "Install",
    "Upgrade",
    "All",
    "KeepInstalled",
    "KeepCurrent",
    "auto",
    "x86_64",
    "1",
    "4",
    "0",
    "-2",
    "+3",
    "x",
    "http://m.example/$repo/os/$arch",
    "/srv/$repo",
    "'quoted word'",
    '"half',
    '\\"',
    "mirrorlist",
    "conf.d/*.conf",
    "mirrors/*.list",
    "none/*.x",
    "#",
    "=",
    "[x]",
]
_value = st.lists(
    st.sampled_from(_WORDS) | st.text(alphabet=" \tabc=#[]$", max_size=6), max_size=4
).map(" ".join)
_line = st.one_of(
    st.builds(
        lambda k, v, sep: f"{k}{sep}{v}",
        st.sampled_from(_KEYS),
        _value,
        st.sampled_from([" = ", "=", " =", "\t=\t"]),
    ),
    st.sampled_from(_KEYS),
    st.sampled_from(
        ["[options]", "[core]", "[extra]", "[]", "[ x ]", "[weird", "# comment", "   ", "", "[core"]
    ),
    st.text(alphabet="abc =[]#$\t", max_size=12),
)
_config_text = st.builds(
    lambda head, lines: "\n".join(([head] if head else []) + lines),
    st.sampled_from(["[options]", "", "[core]"]),
    st.lists(_line, max_size=12),
)


@pytest.mark.oracle
@needs_pacman_conf
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_config_text)
def test_generated_configs_match_pacman_conf(text: str) -> None:
    # Written next to the corpus' mirror lists so that the generated Includes resolve.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.conf"
        path.write_text(text)
        check_file(str(path), cwd=CORPUS)


def _load_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "any.conf"
        path.write_bytes(data)
        try:
            cfg = load_config(path)
        except AlpmError:
            return
        render_pacman_conf(cfg)
        render_repo_list(cfg)
        for repo in cfg.repos:
            render_pacman_conf(cfg, repo.name)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_any_text_parses_or_raises_alpm_error(text: str) -> None:
    _load_bytes(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_parse_or_raise_alpm_error(data: bytes) -> None:
    _load_bytes(data)


# --------------------------------------------------------------------------- units


def test_missing_file_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(AlpmError) as info:
        load_config(tmp_path / "nope.conf")
    assert info.value.code is ErrorCode.NOT_A_FILE
    assert str(tmp_path / "nope.conf") in str(info.value)


def test_unreadable_include_names_the_included_file(tmp_path: Path) -> None:
    main = tmp_path / "main.conf"
    main.write_text(f"[options]\nInclude = {tmp_path}/missing.conf\n")
    with pytest.raises(AlpmError) as info:
        load_config(main)
    assert info.value.code is ErrorCode.NOT_A_FILE
    assert f"{tmp_path}/missing.conf could not be read" in str(info.value)


def test_invalid_value_names_file_and_line(tmp_path: Path) -> None:
    main = tmp_path / "main.conf"
    main.write_text("[options]\n\nParallelDownloads = abc\n")
    with pytest.raises(AlpmError) as info:
        load_config(main)
    assert info.value.code is ErrorCode.CONFIG_INVALID
    assert info.value.details == {"file": str(main), "line": 3}


def test_defaults_are_pacmans(tmp_path: Path) -> None:
    (tmp_path / "e.conf").write_text("")
    cfg = load_config(tmp_path / "e.conf")
    assert dataclasses.replace(cfg, files=[]) == Config()
    assert cfg.siglevel == SigLevel(
        SigPolicy(SigCheck.OPTIONAL, SigTrust.TRUSTED_ONLY),
        SigPolicy(SigCheck.OPTIONAL, SigTrust.TRUSTED_ONLY),
    )
    assert cfg.clean_method is CleanMethod.KEEP_INSTALLED and cfg.parallel_downloads == 1


def test_parsed_values() -> None:
    old = os.getcwd()
    os.chdir(CORPUS)
    try:
        cfg = load_config("every-option.conf")
        repo_cfg = load_config("include-repo.conf")
        auto = load_config("arch-auto.conf")
    finally:
        os.chdir(old)
    assert cfg.root_dir == "/srv/root" and cfg.db_path == "/srv/root/db/"
    assert cfg.no_extract == ["usr/share/man/*", "!usr/share/man/man1/*"]
    assert cfg.architectures == ["x86_64", "x86_64_v3"]
    assert cfg.clean_method is CleanMethod.KEEP_CURRENT
    assert cfg.siglevel == parse_siglevel("Required DatabaseOptional")
    assert (
        cfg.local_file_siglevel_set and cfg.local_file_siglevel.package.check is SigCheck.OPTIONAL
    )
    core = cfg.repo("core")
    assert core is not None and core.usage == Usage.SYNC | Usage.INSTALL
    assert Usage.SEARCH not in core.usage
    assert core.siglevel.database.check is SigCheck.NEVER and core.siglevel_set
    assert split_xfer_command(cfg.xfer_command or "") == [
        "/usr/bin/curl",
        "-L",
        "-C",
        "-",
        "-f",
        "-o",
        "%o",
        "%u",
    ]
    core2 = repo_cfg.repo("core")
    assert core2 is not None and core2.servers == [
        "https://first.example/core/aarch64",
        "https://mirror.example.org/archlinux/core/os/aarch64",
        "https://mirror2.example.org/core/aarch64/",
        "rsync://de.example.net/core/os/aarch64 # trailing text is part of the URL",
        "https://last.example/core/aarch64",
    ]
    assert auto.architectures == [MACHINE, "i686", MACHINE]


def test_overrides_apply_like_the_command_line(tmp_path: Path) -> None:
    conf = tmp_path / "p.conf"
    conf.write_text(
        "[options]\nRootDir = /file-root\nCacheDir = /file-cache/\n"
        "Architecture = i686\n[core]\nServer = http://x/$arch/$repo\n"
    )
    parsed = parse_config(conf)
    cfg = derive_config(
        parsed,
        root_override="/cli",
        cachedir_overrides=["/cli-cache/"],
        hookdir_overrides=["/cli-hooks/"],
        arch_overrides=["auto"],
        gpgdir_override="/cli-gpg/",
        logfile_override="/cli.log",
    )
    assert cfg.root_dir == "/cli" and cfg.db_path == "/cli/var/lib/pacman/"
    assert cfg.log_file == "/cli.log" and cfg.gpg_dir == "/cli-gpg/"
    assert cfg.cache_dirs == ["/cli-cache/", "/file-cache/"]
    assert cfg.hook_dirs == ["/cli-hooks/"]
    assert cfg.architectures == [MACHINE, "i686"]
    assert cfg.repos[0].servers == [f"http://x/{MACHINE}/core"]
    cfg2 = load_config(conf, dbpath_override="/cli-db/")
    assert cfg2.root_dir == "/file-root" and cfg2.db_path == "/cli-db/"
    assert cfg2.log_file == "/file-root/var/log/pacman.log"


def test_siglevel_spec_inherits_field_by_field() -> None:
    base = parse_siglevel("Required TrustAll")
    spec, bad = SigLevelSpec().extended(["PackageTrustedOnly", "DatabaseNever", "Bogus"])
    assert bad == ["Bogus"]
    level = spec.over(base)
    assert level.package == SigPolicy(SigCheck.REQUIRED, SigTrust.TRUSTED_ONLY)
    assert level.database == SigPolicy(SigCheck.NEVER, SigTrust.TRUST_ALL)
    assert level.render() == ["PackageRequired", "PackageTrustedOnly", "DatabaseNever"]
    assert level.render(package_only=True) == ["PackageRequired", "PackageTrustedOnly"]
    assert SigLevelSpec().is_empty() and SigLevelSpec().over(base) == base
    assert DEFAULT_SIGLEVEL.render() == [
        "PackageOptional",
        "PackageTrustedOnly",
        "DatabaseOptional",
        "DatabaseTrustedOnly",
    ]
    with pytest.raises(AlpmError):
        parse_siglevel("Sometimes")


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("", []),
        ("  a  b\tc ", ["a", "b", "c"]),
        ("wget -O '%o' \"%u\"", ["wget", "-O", "%o", "%u"]),
        ('a"b c"d', ["ab cd"]),
        ("x 'it\\'s'", ["x", "it's"]),
        ('x \\"y', ["x", '"y']),
        ("x \\n", ["x", "\\n"]),
    ],
)
def test_split_xfer_command(command: str, argv: list[str]) -> None:
    assert split_xfer_command(command) == argv


@pytest.mark.parametrize("command", ["a 'b", 'a "b\\"', "'"])
def test_split_xfer_command_rejects_unbalanced_quotes(command: str) -> None:
    with pytest.raises(ValueError):
        split_xfer_command(command)


def test_render_unknown_repo() -> None:
    with pytest.raises(AlpmError) as info:
        render_pacman_conf(Config(), "nope")
    assert info.value.code is ErrorCode.DB_NOT_FOUND

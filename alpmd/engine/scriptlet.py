"""Install scriptlets and chrooted commands, as libalpm's ``_alpm_runscriptlet``/``_alpm_run_chroot``.

A command runs in a child that chroots into the root (unless it is ``/``),
changes to ``/``, sets umask 022 and default signal dispositions (SIGPIPE
included, nothing blocked), with stdout and stderr on one pipe whose lines we
forward as :class:`ScriptletInfo` events and ``[ALPM-SCRIPTLET]`` lines of
pacman.log.

The engine is shielded from what it runs: the command's parent is not the
engine but a small guard process in a session of its own that ignores the
catchable signals and only waits, so ``kill $PPID`` (or a signal to the
command's process group) never reaches the engine.
"""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Sequence

from alpmd import TYPE_CHECKING
from alpmd.engine.events import EventCallback, ScriptletInfo
from alpmd.engine.handle import Handle
from alpmd.engine.log import LogLevel

if TYPE_CHECKING:
    from typing import NoReturn

__all__ = ["SCRIPTLET_SHELL", "run_chroot", "run_scriptlet"]

SCRIPTLET_SHELL = "/bin/sh"

_GUARD_IGNORES = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                  signal.SIGUSR2, signal.SIGPIPE, signal.SIGALRM, signal.SIGTSTP, signal.SIGTTIN,
                  signal.SIGTTOU)


def _reset_signals() -> None:
    """Default disposition for every catchable signal and an empty mask (child side)."""
    for sig in range(1, signal.NSIG):
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _child(root: str, path: str, argv: Sequence[str], out_w: int, in_r: int) -> NoReturn:
    """Runs in the forked child: become the guard, fork the command, wait, exit with its status."""
    try:
        os.setsid()
        os.dup2(in_r, 0, inheritable=True)
        os.dup2(out_w, 1, inheritable=True)
        os.dup2(out_w, 2, inheritable=True)
        # Everything else the engine had open goes: the guard is
        # never exec'd, and kept copies of the lock, the journal or a daemon's bus
        # socket would outlive a killed commit (its lock would look held, its bus
        # name owned) for as long as the command runs.
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        if root != "/":
            os.chroot(root)
        os.chdir("/")
        os.umask(0o022)
        # The guard ignores signals before it forks: a command quick enough to signal
        # its parent before a later change would otherwise kill the guard (seen under load).
        for sig in _GUARD_IGNORES:
            try:
                signal.signal(sig, signal.SIG_IGN)
            except (OSError, ValueError, RuntimeError):
                pass
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        pid = os.fork()
        if pid == 0:
            _reset_signals()  # the command gets default dispositions back, SIG_IGN included
            try:
                os.execv(path, list(argv))
            except OSError as exc:
                os.write(2, f"call to execv failed ({exc.strerror})\n".encode())
            os._exit(1)
        os.close(0)
        os.close(1)
        os.close(2)
        _, status = os.waitpid(pid, 0)  # retried on EINTR by Python itself (PEP 475)
        if os.WIFSIGNALED(status):
            os._exit(128 + os.WTERMSIG(status))
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    except BaseException as exc:  # noqa: BLE001 - never return into the engine's code
        try:
            os.write(2, f"could not run {argv[0]}: {exc}\n".encode())
        finally:
            os._exit(1)


def run_chroot(
    handle: Handle,
    argv: Sequence[str],
    *,
    stdin: bytes | None = None,
    event: EventCallback | None = None,
    path: str | None = None,
) -> int:
    """Run ``argv`` (``argv[0]`` a path inside the root, no PATH search) chrooted into the root.

    ``path`` overrides the program to execute (``argv[0]`` is then just its name).
    Returns 0 on success, the exit status, or 128+signal. ``stdin`` is fed to
    the command (``NeedsTargets``); without it stdin is ``/dev/null``.
    """
    root = handle.options.root
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    if stdin is not None:
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
    else:
        in_r, in_w = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), -1
    handle.log(LogLevel.DEBUG, f'executing "{argv[0]}" under chroot "{root}"')
    pid = os.fork()
    if pid == 0:
        _child(root, path or argv[0], argv, out_w, in_r)
    os.close(out_w)
    os.close(in_r)
    pending = stdin or b""
    if in_w >= 0:
        os.set_blocking(in_w, False)
        if not pending:
            os.close(in_w)
            in_w = -1
    buf = b""

    def emit(raw: bytes) -> None:
        line = raw.decode("utf-8", "replace")
        if event is not None:
            event(ScriptletInfo(line=line.rstrip("\n")))
        handle.logaction("ALPM-SCRIPTLET", line)

    try:
        while True:
            readers = [out_r]
            writers = [in_w] if in_w >= 0 else []
            r, w, _ = select.select(readers, writers, [])
            if w:
                try:
                    n = os.write(in_w, pending[:65536])
                    pending = pending[n:]
                except (BrokenPipeError, BlockingIOError) as exc:
                    if isinstance(exc, BrokenPipeError):
                        pending = b""
                if not pending:
                    os.close(in_w)
                    in_w = -1
            if r:
                chunk = os.read(out_r, 65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, _, buf = buf.partition(b"\n")
                    emit(line + b"\n")
        if buf:
            emit(buf)
    finally:
        os.close(out_r)
        if in_w >= 0:
            os.close(in_w)
        _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        code = 128 - code
    if code != 0:
        if code > 128:
            handle.log(LogLevel.ERROR, f"command terminated by signal {code - 128}: "
                                       f"{signal.strsignal(code - 128)}")
        else:
            handle.log(LogLevel.ERROR, "command failed to execute correctly")
    return code


def run_scriptlet(
    handle: Handle,
    script: bytes,
    function: str,
    new_version: str | None,
    old_version: str | None,
    *,
    event: EventCallback | None = None,
) -> int:
    """Run ``function`` (``post_install``...) of an ``.INSTALL`` scriptlet; returns its status.

    Skipped (0) when the root has no ``/bin/sh`` or the script does not mention
    the function. The script is written to a fresh directory under the root's
    ``/tmp`` (created 1777 when missing) and removed afterwards. A failure is
    for the caller to report as a warning: libalpm never aborts on it.
    """
    root = handle.options.root
    if not os.access(root + SCRIPTLET_SHELL.lstrip("/"), os.X_OK):
        handle.log(LogLevel.DEBUG, f"no {SCRIPTLET_SHELL} in root, skipping scriptlet")
        return 0
    if function.encode() not in script:
        return 0
    tmproot = root + "tmp/"
    real_root = os.path.realpath(root).rstrip("/") + "/"
    if not (os.path.realpath(tmproot).rstrip("/") + "/").startswith(real_root):
        # a package made tmp a symlink to a host directory: never write the script there
        handle.log(LogLevel.ERROR, f"could not run scriptlet: {tmproot} resolves outside "
                                   "the root")
        return 1
    if not os.path.isdir(tmproot):
        os.makedirs(tmproot, exist_ok=True)
        os.chmod(tmproot, 0o1777)
    import shutil  # imported here: a commit without scriptlets never needs them
    import tempfile

    tmpdir = tempfile.mkdtemp(prefix="alpm_", dir=tmproot)
    try:
        scriptfile = os.path.join(tmpdir, ".INSTALL")
        with open(scriptfile, "wb") as fh:
            fh.write(script)
        inside = "/" + os.path.relpath(scriptfile, root)
        cmd = f". {inside}; {function} {new_version or ''}"
        if old_version:
            cmd += f" {old_version}"
        handle.log(LogLevel.DEBUG, f'executing "{cmd}"')
        return run_chroot(handle, [SCRIPTLET_SHELL, "-c", cmd], event=event)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)

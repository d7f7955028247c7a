"""A bus caller's file-system identity: paths a caller names are resolved with its rights.

The daemon runs as root; a path a user asks about (Owns) must be looked up as that user
would look it up (``pacman -Qo`` run by the user), or whether it resolves tells the user
what lies in directories it may not search. The switch is made for the calling thread
only: Linux keeps credentials per thread, ``setfsuid``/``setfsgid`` change only the
caller's, and so does the raw ``setgroups`` system call (glibc's ``setgroups`` changes
every thread of the process, which would hand the caller's groups to work done for
others meanwhile). A thread whose file-system uid leaves 0 loses its file capabilities
(``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH``...) and gets them back with uid 0 again.

It keeps its others (``CAP_SYS_PTRACE``), and a process may always read its own /proc: a
/proc magic link (``/proc/<pid>/cwd``, ``/root``, ``/fd/N``, ``/proc/self/fd/N`` naming the
daemon's own descriptors) leads into a directory without searching those above it. A
caller's paths are therefore opened with :func:`open_no_magic`, which refuses them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import platform
import pwd
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from alpmd.engine.errors import AlpmError, ErrorCode

#: ``setgroups`` with 32-bit group ids, by machine (``uname -m``) for a 64-bit process;
#: the kernel's numbering differs per architecture (asm-generic's for the newer ones)
SETGROUPS_64 = {"x86_64": 116, "aarch64": 159, "riscv64": 159, "loongarch64": 159}
#: ... and for a 32-bit process (``setgroups32``: i386 and ARM EABI numbers; a 32-bit
#: process on a 64-bit kernel uses its own architecture's numbers)
SETGROUPS_32 = {"i386": 206, "i486": 206, "i586": 206, "i686": 206, "x86_64": 206,
                "armv6l": 206, "armv7l": 206, "armv8l": 206, "aarch64": 206}
#: the file-system gid of a caller without a passwd entry (the kernel's overflow gid)
NO_GROUP = 65534
#: what ``setfsuid``/``setfsgid`` are given to only learn the current value (an invalid id)
_QUERY = 0xFFFFFFFF

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setfsuid.argtypes = [ctypes.c_uint32]
_libc.setfsuid.restype = ctypes.c_int
_libc.setfsgid.argtypes = [ctypes.c_uint32]
_libc.setfsgid.restype = ctypes.c_int
_libc.syscall.restype = ctypes.c_long
#: ``openat2`` (Linux 5.6; one number on every architecture) and its resolve flag
OPENAT2 = 437
RESOLVE_NO_MAGICLINKS = 0x02
AT_FDCWD = -100


class IdentityError(OSError):
    """The thread could not take the caller's identity (nothing was resolved as root)."""


@dataclass(frozen=True)
class FsIdentity:
    """Whose rights a path is resolved with."""

    uid: int
    gid: int
    groups: tuple[int, ...]


def identity_of(uid: int) -> FsIdentity:
    """``uid``'s identity as a login gives it: its passwd group and the groups listing it;
    a uid without a passwd entry gets no group but :data:`NO_GROUP`."""
    try:
        pw = pwd.getpwuid(uid)
    except KeyError:
        return FsIdentity(uid, NO_GROUP, ())
    return FsIdentity(uid, pw.pw_gid, tuple(os.getgrouplist(pw.pw_name, pw.pw_gid)))


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def open_no_magic(path: str, flags: int) -> int:
    """``open(path, flags)`` (no ``O_CREAT``) passing through no /proc magic link
    (``OSError`` ``ELOOP`` then). Without ``openat2`` an ``AlpmError`` (not an
    ``OSError``, which a look-up takes for a missing path): never opened another way."""
    how = _OpenHow(flags, 0, RESOLVE_NO_MAGICLINKS)
    fd = int(_libc.syscall(ctypes.c_long(OPENAT2), ctypes.c_int(AT_FDCWD),
                           ctypes.c_char_p(os.fsencode(path)), ctypes.byref(how),
                           ctypes.c_size_t(ctypes.sizeof(how))))
    if fd < 0:
        err = ctypes.get_errno()
        if err in (errno.ENOSYS, errno.EPERM):
            # (EPERM: a seccomp filter refusing the call, as older container profiles do;
            # no path's open answers EPERM here, and taken for a missing path every
            # answer would quietly be "unowned")
            raise AlpmError(ErrorCode.SYSTEM, "resolving a caller's path needs openat2 "
                            f"(Linux 5.6 or later, not refused by a sandbox): {os.strerror(err)}")
        raise OSError(err, os.strerror(err), path)
    return fd


def _setgroups_number() -> int | None:
    table = SETGROUPS_64 if ctypes.sizeof(ctypes.c_void_p) == 8 else SETGROUPS_32
    return table.get(platform.machine())


def _set_thread_groups(groups: Sequence[int]) -> None:
    """This thread's supplementary groups (the raw system call: this thread's only)."""
    number = _setgroups_number()
    if number is None:
        raise IdentityError(f"setting a thread's groups is not known on {platform.machine()}")
    array = (ctypes.c_uint32 * max(1, len(groups)))(*groups)
    if _libc.syscall(ctypes.c_long(number), ctypes.c_size_t(len(groups)), array) != 0:
        err = ctypes.get_errno()
        raise IdentityError(err, f"setgroups: {os.strerror(err)}")
    if sorted(os.getgroups()) != sorted(set(groups)):  # (getgroups reads this thread's)
        raise IdentityError(f"the thread's groups did not change to {list(groups)}")


def _set_fs_ids(uid: int, gid: int) -> None:
    _libc.setfsgid(gid)
    _libc.setfsuid(uid)
    if _libc.setfsuid(_QUERY) != uid or _libc.setfsgid(_QUERY) != gid:
        raise IdentityError(f"the thread's file-system ids did not change to {uid}:{gid}")


def fs_ids() -> tuple[int, int]:
    """This thread's file-system uid and gid."""
    return _libc.setfsuid(_QUERY), _libc.setfsgid(_QUERY)


@contextlib.contextmanager
def resolving_as(who: FsIdentity) -> Iterator[None]:
    """Within the block, this thread opens and resolves paths with ``who``'s rights only.

    Root resolves as itself (nothing changes). The thread's own identity is restored on
    the way out, whatever happened; a thread that cannot be restored ends the daemon
    (it would go on doing root's work with a user's identity, or the reverse).
    """
    if who.uid == 0:
        yield
        return
    uid, gid = fs_ids()
    groups = os.getgroups()
    try:
        _set_thread_groups(who.groups)
        _set_fs_ids(who.uid, who.gid)
        yield
    finally:
        try:
            _set_fs_ids(uid, gid)
            _set_thread_groups(groups)
        except BaseException:
            logging.getLogger("alpmd").critical("a thread kept a caller's identity: exiting")
            os.abort()

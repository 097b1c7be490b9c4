"""Kernel layers between being code and the host: rlimits, network namespace, user, Landlock, seccomp.

RestrictedPython is the first wall; these are the ones that hold if it falls. The zygote prepares
what can be prepared once (it leaves the network, builds the seccomp program and the Landlock
ruleset); each child applies the rest to itself right after the fork, before it reads its job.
Every function says whether its layer is in force, with a detail for ``manage.py sandbox check``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import resource
import socket
from typing import NamedTuple

# Linux constants (uapi headers); the syscall numbers of Landlock are the same on every architecture.
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_GET_SECCOMP = 21
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
SECCOMP_MODE_FILTER = 2
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
# Filesystem rights by ABI version: 13 rights in v1, REFER in v2, TRUNCATE in v3, IOCTL_DEV in v5.
_LANDLOCK_FS_BITS = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16}
_LANDLOCK_NET_TCP = 0b11  # BIND_TCP | CONNECT_TCP, ABI 4
_LANDLOCK_SCOPES = 0b11  # ABSTRACT_UNIX_SOCKET | SIGNAL, ABI 6

NOBODY = 65534
FILE_DESCRIPTORS = 16

# Refused with EPERM, so that code which gets this far sees a plain OSError and the child lives to
# report it. Sockets (no network even if a namespace is missing), new processes and threads, exec,
# signals and tracing of other processes, namespaces and mounts, identity changes, and kernel
# surfaces that a sandbox never needs (io_uring would bypass this filter altogether).
DENIED_SYSCALLS = (
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "recvfrom",
    "recvmsg",
    "recvmmsg",
    "setsockopt",
    "getsockopt",
    "getsockname",
    "getpeername",
    "shutdown",
    "execve",
    "execveat",
    "fork",
    "vfork",
    "clone",
    "clone3",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_open",
    "pidfd_getfd",
    "pidfd_send_signal",
    "kill",
    "tkill",
    "tgkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setfsuid",
    "setfsgid",
    "capset",
    "chmod",
    "fchmod",
    "fchmodat",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "mknod",
    "mknodat",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "iopl",
    "ioperm",
    "modify_ldt",
    "name_to_handle_at",
    "open_by_handle_at",
    "personality",
    "sethostname",
    "setdomainname",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "vhangup",
    "mbind",
    "set_mempolicy",
    "migrate_pages",
    "move_pages",
    "process_madvise",
    "fanotify_init",
)

# Allowed only aimed at the calling process: with the worker's uid (when the worker is not root) a
# child could otherwise lower the worker's limits, renice or pin it. Each rule is (syscall, argument
# index, the only value allowed there); a call with any other value is refused with EPERM. A pid of
# 0 is the caller; setpriority and ioprio_set also take which kind of id (0 and 1 mean a process:
# a process group or a user, even the caller's own, would reach other processes).
OWN_PROCESS_ONLY = (
    ("prlimit64", 0, 0),
    ("setpriority", 0, 0),
    ("setpriority", 1, 0),
    ("ioprio_set", 0, 1),
    ("ioprio_set", 1, 0),
    ("sched_setaffinity", 0, 0),
    ("sched_setscheduler", 0, 0),
    ("sched_setparam", 0, 0),
    ("sched_setattr", 0, 0),
)


class Layer(NamedTuple):
    """One layer and whether it is in force, with a sentence saying how or why not."""

    name: str
    in_force: bool
    detail: str

    def as_dict(self) -> dict[str, bool | str]:
        return {"in_force": self.in_force, "detail": self.detail}


_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.prctl.restype = ctypes.c_int
_libc.unshare.argtypes = [ctypes.c_int]
_libc.unshare.restype = ctypes.c_int
_libc.syscall.restype = ctypes.c_long


def _oserror(call: str) -> OSError:
    number = ctypes.get_errno()
    return OSError(number, f"{call}: {os.strerror(number)}")


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    """prctl(2); raises OSError when it fails."""
    result = _libc.prctl(option, arg2, arg3, 0, 0)
    if result < 0:
        raise _oserror("prctl")
    return int(result)


def rlimits_apply(*, cpu_seconds: int, memory_bytes: int) -> Layer:
    """CPU seconds (SIGXCPU, then SIGKILL a second later), address space, no file writes, few files,
    no new processes, no core dumps: hard limits too, so that nothing later can raise them."""
    limits = {
        resource.RLIMIT_CPU: (cpu_seconds, cpu_seconds + 1),
        resource.RLIMIT_AS: (memory_bytes, memory_bytes),
        resource.RLIMIT_FSIZE: (0, 0),
        resource.RLIMIT_NOFILE: (FILE_DESCRIPTORS, FILE_DESCRIPTORS),
        resource.RLIMIT_NPROC: (0, 0),
        resource.RLIMIT_CORE: (0, 0),
        resource.RLIMIT_MEMLOCK: (0, 0),
        resource.RLIMIT_MSGQUEUE: (0, 0),
    }
    try:
        for which, pair in limits.items():
            resource.setrlimit(which, pair)
    except (OSError, ValueError) as error:
        return Layer("rlimits", False, f"setrlimit failed: {error}")
    detail = (
        f"cpu {cpu_seconds} s, address space {memory_bytes // 2**20} MiB, file size 0, "
        f"{FILE_DESCRIPTORS} files, no processes, no core"
    )
    return Layer("rlimits", True, detail)


def network_leave() -> Layer:
    """Move this process (the zygote, whose children inherit it) into a new, empty network namespace."""
    if _libc.unshare(CLONE_NEWNET) != 0:
        return Layer("network", False, f"no network namespace: {_oserror('unshare').strerror}")
    try:
        interfaces = sorted(name for _index, name in socket.if_nameindex())
    except OSError as error:
        return Layer("network", True, f"own network namespace (interfaces unknown: {error.strerror})")
    return Layer("network", interfaces == ["lo"], f"own network namespace, interfaces: {', '.join(interfaces)}")


def user_drop() -> Layer:
    """Become nobody when running as root: no groups, then the group, then the user."""
    if os.geteuid() != 0:
        return Layer("user", False, f"not root, so the child keeps the worker's uid {os.geteuid()}")
    try:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    except OSError as error:
        return Layer("user", False, f"could not drop to nobody: {error.strerror}")
    return Layer("user", os.getuid() == NOBODY and os.getgid() == NOBODY, f"uid and gid {NOBODY} (nobody), no groups")


def no_new_privs() -> bool:
    """Set PR_SET_NO_NEW_PRIVS, which Landlock and an unprivileged seccomp filter need."""
    try:
        prctl(PR_SET_NO_NEW_PRIVS, 1)
    except OSError:
        return False
    return prctl(PR_GET_NO_NEW_PRIVS) == 1


class _LandlockRulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class LandlockRuleset(NamedTuple):
    """A ruleset that handles every filesystem right and grants none: no file can be opened at all."""

    fd: int
    abi: int


def landlock_prepare() -> LandlockRuleset | Layer:
    """Create the deny-everything ruleset once (in the zygote); a Layer saying why not on failure."""
    abi = int(
        _libc.syscall(
            ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET),
            None,
            ctypes.c_size_t(0),
            ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION),
        )
    )
    if abi < 1:
        return Layer("landlock", False, f"Landlock unavailable: {_oserror('landlock_create_ruleset').strerror}")
    attr = _LandlockRulesetAttr(
        handled_access_fs=(1 << _LANDLOCK_FS_BITS.get(abi, 16)) - 1,
        handled_access_net=_LANDLOCK_NET_TCP if abi >= 4 else 0,
        scoped=_LANDLOCK_SCOPES if abi >= 6 else 0,
    )
    fd = int(
        _libc.syscall(
            ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET),
            ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
            ctypes.c_uint32(0),
        )
    )
    if fd < 0:
        return Layer("landlock", False, f"landlock_create_ruleset failed: {_oserror('landlock').strerror}")
    os.set_inheritable(fd, False)
    return LandlockRuleset(fd=fd, abi=abi)


def landlock_apply(ruleset: LandlockRuleset | Layer) -> Layer:
    """Restrict this process with the prepared ruleset (needs no_new_privs first)."""
    if isinstance(ruleset, Layer):
        return ruleset
    result = _libc.syscall(ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(ruleset.fd), ctypes.c_uint32(0))
    if result != 0:
        return Layer("landlock", False, f"landlock_restrict_self failed: {_oserror('landlock').strerror}")
    scoped = ", signals and abstract sockets scoped" if ruleset.abi >= 6 else ""
    return Layer("landlock", True, f"ABI {ruleset.abi}: no file may be opened, read or written{scoped}")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class SeccompProgram(NamedTuple):
    """The BPF program pyseccomp compiled for the zygote, ready for a child to load with one prctl."""

    buffer: ctypes.Array[ctypes.c_char]
    program: _SockFprog
    refused: int


def seccomp_compile() -> dict[str, int | str]:
    """The filter as BPF, ``{"code": hex, "refused": n}``, or ``{"error": why not}``: EPERM for DENIED_SYSCALLS,
    allow the rest, kill on a foreign architecture. The zygote calls it in a process of its own."""
    try:
        import pyseccomp  # type: ignore[import-untyped]
    except (ImportError, RuntimeError) as error:
        return {"error": f"pyseccomp unavailable: {error}"}
    refusal = pyseccomp.ERRNO(errno.EPERM)
    rules = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    rules.set_attr(pyseccomp.Attr.ACT_BADARCH, pyseccomp.KILL_PROCESS)
    # A binary tree, not a chain of comparisons: the kernel runs the filter for every syscall number when
    # a child loads it (to cache the ones always allowed), and a chain costs each child 0.07 ms more.
    with contextlib.suppress(OSError, ValueError):  # libseccomp older than 2.5: the chain
        rules.set_attr(pyseccomp.Attr.CTL_OPTIMIZE, 2)
    refused = 0
    for name in DENIED_SYSCALLS:
        try:
            rules.add_rule(refusal, name)
        except (OSError, ValueError):
            continue  # a syscall this architecture does not have
        refused += 1
    for name, index, allowed in OWN_PROCESS_ONLY:
        try:
            rules.add_rule(refusal, name, pyseccomp.Arg(index, pyseccomp.NE, allowed))
        except (OSError, ValueError):
            continue
    memfd = os.memfd_create("luxos-seccomp")
    try:
        with open(memfd, "rb", closefd=False) as file:  # pyseccomp wants something with fileno()
            rules.export_bpf(file)
        size = os.lseek(memfd, 0, os.SEEK_END)
        code = os.pread(memfd, size, 0)
    except OSError as error:
        return {"error": f"could not export the filter: {error}"}
    finally:
        os.close(memfd)
    return {"code": code.hex(), "refused": refused}


def seccomp_prepare(compiled: dict[str, int | str]) -> SeccompProgram | Layer:
    """The program of what ``seccomp_compile`` returned, which the zygote runs in a child that then exits:
    pyseccomp imports threading (through ctypes.util and subprocess), whose hook at every fork would cost
    each sandbox child a third of a millisecond, and its modules a megabyte more to copy at each fork."""
    if "error" in compiled:
        return Layer("seccomp", False, str(compiled["error"]))
    code = bytes.fromhex(str(compiled["code"]))
    buffer = ctypes.create_string_buffer(code, len(code))
    program = _SockFprog(len=len(code) // 8, filter=ctypes.cast(buffer, ctypes.c_void_p))
    return SeccompProgram(buffer=buffer, program=program, refused=int(compiled["refused"]))


def seccomp_apply(prepared: SeccompProgram | Layer) -> Layer:
    """Load the prepared filter into this process (needs no_new_privs first); it cannot be removed."""
    if isinstance(prepared, Layer):
        return prepared
    try:
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prepared.program))
    except OSError as error:
        return Layer("seccomp", False, f"could not load the filter: {error.strerror}")
    detail = (
        f"{prepared.refused} syscalls refused with EPERM (sockets, exec, fork, kill, ...), "
        "limits, priority and affinity of other processes too"
    )
    return Layer("seccomp", True, detail)

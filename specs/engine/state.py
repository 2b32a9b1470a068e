"""Process state that a rule or test must not leak.

:class:`GlobalState` is torch's global state (grad and anomaly modes, default dtype, threads,
deterministic algorithms, the saved-tensors default hooks, the forward-AD level): cheap enough to
capture around every generated example.  :class:`ProcessState` is the process's own (environment
variables, child processes, files in the working directory): captured around every test, not
every example, because reading it costs tens of microseconds.  :class:`Isolated` checks both and
restores what can be restored, and always restores the torch, Python and numpy random states.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

try:
    import numpy
except ImportError:  # numpy is optional for torch; without it there is no numpy seed to leak
    numpy = None

#: Bytes of numpy's MT19937 state (uint32 key[624]; int pos) behind its ctypes address.
_MT19937_BYTES = 624 * 4 + 4


def _numpy_state_address() -> int | None:
    """Where numpy's global (legacy) generator keeps its state, when numpy exposes it."""
    try:
        return numpy.random.mtrand._rand._bit_generator.ctypes.state_address
    except AttributeError:
        return None


class _NumpyRandomState:
    """numpy's global random state, read and written as raw bytes: about 1 µs each way, where
    numpy.random.get_state and set_state build and parse a 624-entry array (hundreds of µs)."""

    def __init__(self) -> None:
        self.address = _numpy_state_address() if numpy is not None else None
        self.fallback = numpy.random.get_state() if numpy is not None and self.address is None else None
        self.saved = ctypes.string_at(self.address, _MT19937_BYTES) if self.address else None

    def restore(self) -> None:
        # numpy.random.seed reseeds the same generator in place, so the address still holds.
        if self.saved is not None and ctypes.string_at(self.address, _MT19937_BYTES) != self.saved:
            ctypes.memmove(self.address, self.saved, _MT19937_BYTES)
        elif self.fallback is not None:
            numpy.random.set_state(self.fallback)


def _read(getter: Callable[[], Any] | None) -> Any:
    """A value torch may not provide on an older release (None then)."""
    return getter() if getter is not None else None


def _saved_tensors_hooks() -> tuple | None:
    top = getattr(torch._C._autograd, "_top_saved_tensors_default_hooks", None)
    if top is None:
        return None
    try:
        return top(False)
    except TypeError:  # releases whose function takes no argument
        return top()


def _forward_ad_level() -> int | None:
    forward_ad = getattr(torch.autograd, "forward_ad", None)
    return getattr(forward_ad, "_current_level", None)


@dataclass(frozen=True)
class GlobalState:
    grad_enabled: bool
    inference_mode: bool
    anomaly_enabled: bool
    anomaly_check_nan: bool
    default_dtype: torch.dtype
    num_threads: int
    num_interop_threads: int
    deterministic_algorithms: bool
    deterministic_warn_only: bool | None
    autograd_multithreading: bool | None
    #: the (pack, unpack) pair on top of the saved-tensors default hooks stack, None when empty
    saved_tensors_hooks: tuple | None
    forward_ad_level: int | None

    @classmethod
    def capture(cls) -> GlobalState:
        check_nan = getattr(torch, "is_anomaly_check_nan_enabled", lambda: True)()
        return cls(
            grad_enabled=torch.is_grad_enabled(),
            inference_mode=torch.is_inference_mode_enabled(),
            anomaly_enabled=torch.is_anomaly_enabled(),
            anomaly_check_nan=check_nan,
            default_dtype=torch.get_default_dtype(),
            num_threads=torch.get_num_threads(),
            num_interop_threads=torch.get_num_interop_threads(),
            deterministic_algorithms=torch.are_deterministic_algorithms_enabled(),
            deterministic_warn_only=_read(getattr(torch, "is_deterministic_algorithms_warn_only_enabled", None)),
            autograd_multithreading=_read(getattr(torch._C, "_is_multithreading_enabled", None)),
            saved_tensors_hooks=_saved_tensors_hooks(),
            forward_ad_level=_forward_ad_level(),
        )

    def restore(self) -> None:
        # Inference mode can only be left by its context manager's own exit, and the interop
        # thread count can only be set before torch first runs parallel work: a leak of either is
        # reported but not undone.
        torch.set_grad_enabled(self.grad_enabled)
        try:
            torch.autograd.set_detect_anomaly(self.anomaly_enabled, check_nan=self.anomaly_check_nan)
        except TypeError:  # releases before check_nan existed
            torch.autograd.set_detect_anomaly(self.anomaly_enabled)
        torch.set_default_dtype(self.default_dtype)
        if torch.get_num_threads() != self.num_threads:
            torch.set_num_threads(self.num_threads)
        now = GlobalState.capture()
        # The first use_deterministic_algorithms call of a process imports for seconds: only on a leak.
        if (now.deterministic_algorithms, now.deterministic_warn_only) != (
            self.deterministic_algorithms,
            self.deterministic_warn_only,
        ):
            if self.deterministic_warn_only is None:
                torch.use_deterministic_algorithms(self.deterministic_algorithms)
            else:
                torch.use_deterministic_algorithms(
                    self.deterministic_algorithms,
                    warn_only=self.deterministic_warn_only,
                )
        if self.autograd_multithreading is not None:
            torch._C._set_multithreading_enabled(self.autograd_multithreading)
        # Hooks pushed and never popped (a saved_tensors_hooks context entered by hand) are popped
        # until the hooks in force before are on top again.
        for _ in range(64):
            top = _saved_tensors_hooks()
            if top is None or top == self.saved_tensors_hooks:
                break
            torch._C._autograd._pop_saved_tensors_default_hooks()
        # Dual levels entered and never exited are exited, innermost first.
        if self.forward_ad_level is not None:
            while _forward_ad_level() > self.forward_ad_level:
                torch.autograd.forward_ad.exit_dual_level(level=_forward_ad_level())

    def differences(self, other: GlobalState) -> list[str]:
        if self == other:  # the usual case, one tuple comparison
            return []
        return [
            f"{f.name}: {getattr(self, f.name)} -> {getattr(other, f.name)}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


#: Entries of the working directory a run may create: its build folder and tools' caches (also
#: those of tools a developer runs beside the tests, such as ruff, which would read as a leak).
ALLOWED_FILES = frozenset(
    {
        "build",
        ".hypothesis",
        ".pytest_cache",
        ".benchmarks",
        "__pycache__",
        ".nox",
        ".ruff_cache",
        ".mypy_cache",
    }
)


def _children() -> frozenset[int]:
    """This process's live (or unreaped) child processes.

    /proc lists the children of each thread separately; only the main thread's are read (one file,
    where every thread's would cost a read per torch worker thread), and multiprocessing's own
    list covers the processes it started from any thread.
    """
    pids = {child.pid for child in multiprocessing.active_children()}
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as listing:
            pids.update(int(pid) for pid in listing.read().split())
    except OSError:  # no /proc (macOS): multiprocessing's list is all there is
        pass
    return frozenset(pids - _process_helpers(pids))


#: torch's own long-lived helper processes, recognised by their command line: inductor's pool of
#: compile workers (torch 2.4 to 2.6 start it when ``torch._inductor.async_compile`` is first
#: imported, in whichever test first compiles) is kept until the process exits, by design.
TORCH_HELPER_COMMANDS = ("_inductor/compile_worker",)


def _command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as command:
            return command.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _process_helpers(children: set[int]) -> set[int]:
    """Which of ``children`` are helpers started once per process and kept until exit by design, so
    not a test's leak: multiprocessing's resource tracker and fork server, and torch's own helpers
    (:data:`TORCH_HELPER_COMMANDS`)."""
    import sys

    helpers: set[int] = set()
    tracker = sys.modules.get("multiprocessing.resource_tracker")
    pid = getattr(getattr(tracker, "_resource_tracker", None), "_pid", None)
    if pid:
        helpers.add(pid)
    forkserver = sys.modules.get("multiprocessing.forkserver")
    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    if pid:
        helpers.add(pid)
    helpers.update(pid for pid in children if any(m in _command_line(pid) for m in TORCH_HELPER_COMMANDS))
    return helpers


#: Variables that are not a test's to leak: pytest changes the first between a test's phases, and
#: torch sets the others itself, once per process, when a module is first imported or a compiler
#: first runs (torch/_inductor: cache folders, a cuBLAS setting, an OpenMP workaround, the address
#: its compiled modules read a function pointer from; CUDA builds up to 2.6 also set the CUDA
#: module loading mode, even on a machine without a GPU).
IGNORED_VARIABLES = (
    "PYTEST_CURRENT_TEST",
    "TORCHINDUCTOR_CACHE_DIR",
    "TRITON_CACHE_DIR",
    "CUBLAS_WORKSPACE_CONFIG",
    "KMP_DUPLICATE_LIB_OK",
    "_TORCHINDUCTOR_PYOBJECT_TENSOR_DATA_PTR",
    "CUDA_MODULE_LOADING",
)


def _environment() -> dict[bytes | str, bytes | str]:
    # os.environ decodes every variable on each read; its raw mapping is copied ~100x faster.
    raw = getattr(os.environ, "_data", None)
    environment = dict(raw) if raw is not None else dict(os.environ)
    for name in IGNORED_VARIABLES:
        environment.pop(os.fsencode(name) if raw is not None else name, None)
    return environment


@dataclass(frozen=True)
class ProcessState:
    environment: dict
    children: frozenset[int]
    #: the working directory (where the run writes) and its entries
    directory: str
    files: frozenset[str]

    @classmethod
    def capture(cls) -> ProcessState:
        directory = os.getcwd()
        return cls(_environment(), _children(), directory, frozenset(os.listdir(directory)))

    def restore(self) -> None:
        # Child processes and files are reported, never killed or deleted: they may be someone's.
        now = _environment()
        for key in now.keys() | self.environment.keys():
            if key not in self.environment:
                del os.environ[_text(key)]
            elif now.get(key) != self.environment[key]:
                os.environ[_text(key)] = _text(self.environment[key])
        if os.getcwd() != self.directory:
            os.chdir(self.directory)

    def differences(self, other: ProcessState) -> list[str]:
        found = []
        before, after = self.environment, other.environment
        changed = sorted(_text(k) for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        if changed:
            found.append(f"environment variables set, changed or removed: {', '.join(changed)}")
        started = sorted(other.children - self.children)
        if started:
            found.append(f"child processes still running: {started}")
        if other.directory != self.directory:
            found.append(f"working directory: {self.directory} -> {other.directory}")
        elif not _shared_temporary(self.directory):
            created = sorted(other.files - self.files - ALLOWED_FILES)
            if created:
                found.append(f"files created in {Path(self.directory).name}/ outside build/: {created}")
        return found


def _shared_temporary(directory: str) -> bool:
    """Whether ``directory`` is the system's temporary folder, where every process (other pytest
    workers, torch's compiler caches) creates entries: a new one there is nobody's leak."""
    import tempfile

    return os.path.realpath(directory) == os.path.realpath(tempfile.gettempdir())


def _text(value: bytes | str) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else value


class Isolated:
    """Context manager: restores global state and random states on exit, and reports what leaked.

    ``process_state=False`` checks torch's global state only (a few microseconds): for the guard
    around each generated example, inside a test whose own guard checks everything.
    """

    def __init__(self, process_state: bool = True):
        self.process_state = process_state

    def __enter__(self) -> Isolated:  # noqa: PYI034 - typing.Self needs Python 3.11; old torch releases run on older Pythons
        self.before = GlobalState.capture()
        self.process_before = ProcessState.capture() if self.process_state else None
        self.torch_rng = torch.get_rng_state()
        self.python_rng = random.getstate()
        self.numpy_rng = _NumpyRandomState() if self.process_state else None
        self.leaks: list[str] = []
        return self

    def __exit__(self, *exc_info) -> None:
        after = GlobalState.capture()
        self.leaks = self.before.differences(after)
        if self.leaks:
            self.before.restore()
        if self.process_before is not None:
            process_leaks = self.process_before.differences(ProcessState.capture())
            if process_leaks:
                self.process_before.restore()
            self.leaks += process_leaks
        torch.set_rng_state(self.torch_rng)
        random.setstate(self.python_rng)
        if self.numpy_rng is not None:
            self.numpy_rng.restore()

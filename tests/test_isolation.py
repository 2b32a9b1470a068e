"""Meta-tests of the isolation guard: each kind of leak is detected, and undone where it can be."""

import dataclasses
import os
import random
import subprocess
import sys
import time

import pytest
import torch

from specs.engine.state import GlobalState, Isolated, ProcessState


def _leaks(action) -> list[str]:
    with Isolated() as guard:
        action()
    return guard.leaks


def _mentions(leaks, name):
    return any(name in leak for leak in leaks)


def test_grad_mode_and_default_dtype():
    def leak():
        torch.set_grad_enabled(False)
        torch.set_default_dtype(torch.float64)

    leaks = _leaks(leak)
    assert _mentions(leaks, "grad_enabled") and _mentions(leaks, "default_dtype")
    assert torch.is_grad_enabled() and torch.get_default_dtype() == torch.float32


def test_anomaly_mode():
    assert _mentions(_leaks(lambda: torch.autograd.set_detect_anomaly(True)), "anomaly_enabled")
    assert not torch.is_anomaly_enabled()


def test_intra_op_threads():
    before = torch.get_num_threads()
    assert _mentions(_leaks(lambda: torch.set_num_threads(before + 1)), "num_threads")
    assert torch.get_num_threads() == before


def test_interop_threads_are_reported(monkeypatch):
    # torch refuses to change them once it ran parallel work, so a leak is simulated.
    before = torch.get_num_interop_threads()
    leaks = _leaks(lambda: monkeypatch.setattr(torch, "get_num_interop_threads", lambda: before + 3))
    assert f"num_interop_threads: {before} -> {before + 3}" in leaks


def test_deterministic_algorithms(monkeypatch):
    # The first real use_deterministic_algorithms call of a process imports for seconds: simulated.
    calls = []
    monkeypatch.setattr(
        torch,
        "use_deterministic_algorithms",
        lambda mode, **kw: calls.append((mode, kw)),
    )

    def leak():
        monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: True)
        monkeypatch.setattr(torch, "is_deterministic_algorithms_warn_only_enabled", lambda: True)

    leaks = _leaks(leak)
    assert _mentions(leaks, "deterministic_algorithms") and _mentions(leaks, "deterministic_warn_only")
    assert calls == [(False, {"warn_only": False})]


def test_autograd_multithreading():
    assert _mentions(
        _leaks(lambda: torch._C._set_multithreading_enabled(False)),
        "autograd_multithreading",
    )
    assert torch._C._is_multithreading_enabled()


def test_saved_tensors_default_hooks_left_pushed():
    def leak():
        torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t).__enter__()
        torch.autograd.graph.save_on_cpu().__enter__()

    assert _mentions(_leaks(leak), "saved_tensors_hooks")
    assert torch._C._autograd._top_saved_tensors_default_hooks(False) is None


def test_forward_ad_level_left_entered():
    assert _mentions(_leaks(torch.autograd.forward_ad.enter_dual_level), "forward_ad_level")
    assert torch.autograd.forward_ad._current_level == -1


@pytest.mark.parametrize("change", ["set", "changed", "removed"])
def test_environment_variables(monkeypatch, change):
    monkeypatch.setenv("AUTOGRAD_SPEC_PRESENT", "before")
    monkeypatch.delenv("AUTOGRAD_SPEC_ABSENT", raising=False)
    name = {
        "set": "AUTOGRAD_SPEC_ABSENT",
        "changed": "AUTOGRAD_SPEC_PRESENT",
        "removed": "AUTOGRAD_SPEC_PRESENT",
    }
    action = {
        "set": lambda: os.environ.update(AUTOGRAD_SPEC_ABSENT="x"),
        "changed": lambda: os.environ.update(AUTOGRAD_SPEC_PRESENT="after"),
        "removed": lambda: os.environ.pop("AUTOGRAD_SPEC_PRESENT"),
    }
    assert _mentions(_leaks(action[change]), name[change])
    assert os.environ.get("AUTOGRAD_SPEC_PRESENT") == "before" and "AUTOGRAD_SPEC_ABSENT" not in os.environ


def test_a_child_process_left_running():
    children = []
    try:
        leaks = _leaks(lambda: children.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])))
        assert f"child processes still running: [{children[0].pid}]" in leaks
    finally:
        for child in children:
            child.kill()
            child.wait()
    assert _leaks(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True)) == []


@pytest.mark.skipif(not os.path.exists("/proc/self/cmdline"), reason="command lines are read from /proc (Linux)")
def test_torch_compile_worker_pool_is_not_a_leak(tmp_path):
    """Inductor's compile-worker pool (a child running torch/_inductor/compile_worker/) lives until
    exit by design; torch 2.4 to 2.6 start it in whichever test first compiles. Any other child is
    still a leak."""
    worker = tmp_path / "_inductor" / "compile_worker" / "__main__.py"
    worker.parent.mkdir(parents=True)
    worker.write_text("import time\ntime.sleep(60)\n")
    other = tmp_path / "worker.py"
    other.write_text("import time\ntime.sleep(60)\n")
    children = []

    def start(script):
        child = subprocess.Popen([sys.executable, str(script)])
        children.append(child)
        for _ in range(500):  # until the child has exec'd (its command line is no longer pytest's)
            with open(f"/proc/{child.pid}/cmdline", "rb") as command:
                if str(script).encode() in command.read():
                    return
            time.sleep(0.01)

    try:
        assert _leaks(lambda: start(worker)) == []
        leaks = _leaks(lambda: start(other))
        assert f"child processes still running: [{children[1].pid}]" in leaks
    finally:
        for child in children:
            child.kill()
            child.wait()


def test_files_created_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    leaks = _leaks(lambda: (tmp_path / "out.json").write_text("{}"))
    assert _mentions(leaks, "out.json")
    assert _leaks(lambda: (tmp_path / "build").mkdir()) == []


def test_working_directory(tmp_path):
    start = os.getcwd()
    assert _mentions(_leaks(lambda: os.chdir(tmp_path)), "working directory")
    assert os.getcwd() == start


def test_seeds_are_restored_silently():
    numpy = pytest.importorskip("numpy", reason="numpy is optional for torch; without it there is no numpy seed")
    torch_state, python_state, numpy_state = (
        torch.get_rng_state(),
        random.getstate(),
        numpy.random.get_state(),
    )

    def reseed():
        torch.manual_seed(7)
        random.seed(7)
        numpy.random.seed(7)

    assert _leaks(reseed) == []
    assert torch.equal(torch.get_rng_state(), torch_state) and random.getstate() == python_state
    after = numpy.random.get_state()
    assert numpy.array_equal(after[1], numpy_state[1]) and after[2] == numpy_state[2]


def test_the_per_example_guard_checks_torch_state_only():
    try:
        with Isolated(process_state=False) as guard:
            os.environ["AUTOGRAD_SPEC_EXAMPLE"] = "1"
            torch.set_grad_enabled(False)
    finally:
        os.environ.pop("AUTOGRAD_SPEC_EXAMPLE")
    assert len(guard.leaks) == 1 and _mentions(guard.leaks, "grad_enabled")


def test_no_change_is_no_leak():
    assert _leaks(lambda: (torch.ones(2, requires_grad=True) * 2).sum().backward()) == []
    state = GlobalState.capture()
    assert state.differences(dataclasses.replace(state)) == []
    process = ProcessState.capture()
    assert process.differences(ProcessState.capture()) == []


def test_files_in_the_shared_temporary_folder_are_nobodys_leak(tmp_path, monkeypatch):
    """Run from the system's temp folder (as a user may), entries other processes create there are ignored."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with Isolated() as guard:
        (tmp_path / "another-process-cache").mkdir()
    assert not any("files created" in leak for leak in guard.leaks)

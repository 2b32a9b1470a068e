"""Anomaly detection: which node failed, where its forward came from, NaN checks, and its scope."""

from __future__ import annotations

import contextlib
import inspect
import re
import threading
import warnings

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase, WarningContract
from specs.engine.expect import Tolerance, expect, expect_close
from specs.engine.registry import Family, Feature, rule
from specs.engine.sections import Section
from specs.generators.strategies import programs

FAMILY = Family(
    name="anomaly",
    title="Anomaly detection",
    summary="What detect_anomaly reports when backward fails or produces NaN, and how far its setting reaches.",
    gallery="plot_86_anomaly.py",
)


NAN_GRADIENT = ErrorContract(
    RuntimeError,
    r"Function '(Sqrt|SqrtBackward\d+)' returned nan values in its 0th output",
    Phase.BACKWARD,
    wording="the node is named SqrtBackward0 in 2.13; the forward-op naming of other messages may reach it",
)
ENABLED_WARNING = WarningContract(UserWarning, r"Anomaly Detection has been enabled")
FORWARD_TRACE = r"Error detected in (Sqrt|SqrtBackward\d+)\. Traceback of forward call that caused the error"
NO_FORWARD_TRACE = r"Error detected in (Sqrt|SqrtBackward\d+)\. No forward pass information available"

CHECK_NAN = Feature(
    "the check_nan argument of torch.autograd.detect_anomaly",
    lambda: "check_nan" in inspect.signature(torch.autograd.detect_anomaly.__init__).parameters,
)

#: The line every failing example ends with: d sqrt(u)/du at u < 0 is NaN.
NAN_TAIL = "torch.sqrt(out.sum() * 0 - 1)"


def _nan_tail(out: torch.Tensor) -> torch.Tensor:
    """A scalar whose backward makes the sqrt node return NaN, whatever ``out`` holds."""
    return torch.sqrt(out.sum() * 0 - 1)


@contextlib.contextmanager
def _anomaly(api: str = "detect_anomaly", **options):
    """Anomaly mode on, its enabling warning silenced (a rule of its own)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Anomaly Detection has been enabled")
        manager = (
            torch.autograd.detect_anomaly(**options)
            if api == "detect_anomaly"
            else torch.autograd.set_detect_anomaly(True, **options)
        )
        with manager:
            yield


@rule(
    "anomaly.nan-gradient-names-the-node",
    section=Section.PRACTICAL,
    docs="anomaly-nan",
    given=dict(program=programs(max_ops=4)),
    contracts=(NAN_GRADIENT,),
    references=("test_autograd.py::TestAutograd::test_anomaly_detect_nan",),
)
def nan_gradient_names_the_node(program):
    """In anomaly mode, a backward node that returns a NaN gradient makes backward raise a RuntimeError naming that node and the output index."""
    with _anomaly(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        NAN_GRADIENT.check(
            lambda: _nan_tail(program(*program.inputs())),
            repro=program.repro("with torch.autograd.detect_anomaly():", f"    {NAN_TAIL}.backward()"),
        )


def _backward_warnings(program, forward_mode: bool) -> tuple[str, list[str]]:
    leaves = program.inputs()
    with _anomaly() if forward_mode else contextlib.nullcontext():
        loss = _nan_tail(program(*leaves))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _anomaly():
            try:
                loss.backward()
            except RuntimeError as error:
                raised = str(error)
            else:
                raised = ""
    return raised, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


@rule(
    "anomaly.error-shows-the-forward-call",
    section=Section.PRACTICAL,
    docs="anomaly-traceback",
    given=dict(program=programs(max_ops=6), forward_mode=st.booleans()),
    references=(
        "test_autograd.py::TestAutograd::test_anomaly_detect_nan",
        "test_autograd.py::TestAutograd::test_anomaly_grad_warnings",
    ),
)
def error_shows_the_forward_call(program, forward_mode):
    """When backward fails in anomaly mode, a UserWarning names the failing node and shows the traceback of the forward call that created it, if anomaly mode was on during the forward, else says no forward information is available."""
    raised, messages = _backward_warnings(program, forward_mode)
    repro = program.repro(
        ("with torch.autograd.detect_anomaly():\n    " if forward_mode else "") + f"loss = {NAN_TAIL}",
        "try:",
        "    with torch.autograd.detect_anomaly():",
        "        loss.backward()",
        "except RuntimeError as error:",
        "    print(error)",
    )
    expect(bool(raised), what="backward raised", expected="a RuntimeError", observed="nothing", repro=repro)
    pattern = FORWARD_TRACE if forward_mode else NO_FORWARD_TRACE
    matching = [m for m in messages if re.search(pattern, m)]
    expect(bool(matching), what="the anomaly warning", expected=pattern, observed=messages, repro=repro)
    if forward_mode:
        expect(
            "_nan_tail" in matching[0] and "torch.sqrt" in matching[0],
            what="the traceback shows the forward function and line that recorded the node",
            expected="_nan_tail / torch.sqrt(...)",
            observed=matching[0],
            repro=repro,
        )


@rule(
    "anomaly.check-nan-can-be-turned-off",
    section=Section.PRACTICAL,
    docs="anomaly-nan",
    requires=(CHECK_NAN,),
    given=dict(program=programs(max_ops=4), api=st.sampled_from(["detect_anomaly", "set_detect_anomaly"])),
    references=("test_autograd.py::TestAutograd::test_anomaly_mode_no_check_nan",),
)
def check_nan_can_be_turned_off(program, api):
    """With check_nan=False anomaly mode does not check for NaN, so backward completes and the NaN gradient flows on."""
    leaves = program.inputs()
    seen = []
    out = program(*leaves)
    out.register_hook(lambda g: seen.append(g.detach().clone()))
    loss = _nan_tail(out)
    with _anomaly(api, check_nan=False):
        expect(
            not torch.is_anomaly_check_nan_enabled(),
            what="is_anomaly_check_nan_enabled() inside",
            expected=False,
            observed=True,
        )
        loss.backward()
    grad = seen[0]
    expect(
        grad.numel() == 0 or bool(torch.isnan(grad).all()),
        what="the gradient reaching out",
        expected="all NaN",
        observed=grad,
        repro=program.repro(
            f"with torch.autograd.{api}({'' if api == 'detect_anomaly' else 'True, '}check_nan=False):",
            f"    out.register_hook(print); {NAN_TAIL}.backward()",
        ),
    )


@rule(
    "anomaly.mode-is-process-global",
    section=Section.PRACTICAL,
    docs="anomaly-scope",
    given=dict(program=programs(max_ops=4), api=st.sampled_from(["detect_anomaly", "set_detect_anomaly"])),
)
def mode_is_process_global(program, api):
    """Anomaly mode is one setting for the whole process: a thread started while it is on runs with it on, unlike grad mode, which is per thread."""
    seen = {}

    def worker():
        seen["modes"] = (torch.is_anomaly_enabled(), torch.is_grad_enabled())
        try:
            _nan_tail(program(*program.inputs())).backward()
        except RuntimeError as error:
            seen["error"] = str(error)

    with _anomaly(api), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    repro = program.repro(
        "import threading",
        "seen = {}",
        "def worker():",
        "    seen['modes'] = (torch.is_anomaly_enabled(), torch.is_grad_enabled())",
        "    try:",
        f"        torch.sqrt({program.call}.sum() * 0 - 1).backward()",
        "    except RuntimeError as error:",
        "        seen['error'] = str(error)",
        f"with torch.autograd.{'detect_anomaly()' if api == 'detect_anomaly' else 'set_detect_anomaly(True)'}, torch.no_grad():",
        "    thread = threading.Thread(target=worker)",
        "    thread.start()",
        "    thread.join()",
        "print(seen)",
    )
    expect(
        seen["modes"] == (True, True),
        what="(anomaly mode, grad mode) in the new thread",
        expected=(True, True),
        observed=seen["modes"],
        repro=repro,
    )
    expect(
        re.search(NAN_GRADIENT.pattern, seen.get("error", "")) is not None,
        what="a NaN gradient in the new thread raises",
        expected=NAN_GRADIENT.describe(),
        observed=seen.get("error", "no error"),
        repro=repro,
    )
    expect(
        not torch.is_anomaly_enabled(),
        what="anomaly mode after leaving the context manager",
        expected=False,
        observed=True,
    )


@rule(
    "anomaly.gradients-are-unchanged",
    section=Section.PRACTICAL,
    docs="anomaly-scope",
    given=dict(program=programs(max_ops=5)),
    contracts=(ENABLED_WARNING,),
    references=("test_autograd.py::TestAutograd::test_anomaly_grad_warnings",),
)
def gradients_are_unchanged(program):
    """Entering anomaly mode emits a UserWarning that it slows autograd down, and it computes exactly the same gradients."""
    plain = program.inputs()
    program(*plain).sum().backward()
    leaves = program.inputs()
    with ENABLED_WARNING.check(torch.autograd.detect_anomaly, repro="with torch.autograd.detect_anomaly(): ..."):
        program(*leaves).sum().backward()
    for i in program.grad_leaves:
        expect_close(
            leaves[i].grad,
            plain[i].grad,
            tolerance=Tolerance(0, 0, "the same computation, only checked"),
            what=f"x{i}.grad in anomaly mode",
            repro=program.repro(
                "with torch.autograd.detect_anomaly():", f"    {program.call}.sum().backward()", *program.print_grads
            ),
        )

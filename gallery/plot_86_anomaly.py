"""
Anomaly detection: finding the operation behind a failing backward
==================================================================

An error or a NaN raised during ``backward`` points at a backward node, far from the line of
forward code that recorded it. Anomaly mode remembers, for every node, where in the forward it
was created, and checks every gradient for NaN.
"""

import threading
import warnings

import torch

from specs.rendering.demo import law

# %%
# .. _anomaly-nan:
#
# A NaN gradient becomes an error naming the node
# -----------------------------------------------
#
# The derivative of :math:`\sqrt{u}` at :math:`u < 0` is NaN. Without anomaly mode, backward
# finishes and the NaN spreads silently into ``.grad``. Inside ``torch.autograd.detect_anomaly()``
# the node that returned the NaN raises a ``RuntimeError`` naming itself. ``check_nan=False``
# keeps the forward tracebacks but switches the NaN check off.
x = torch.tensor([1.0, 2.0], requires_grad=True)
torch.sqrt(x.sum() * 0 - 1).backward()
assert torch.isnan(x.grad).all()  # silently NaN

x = torch.tensor([1.0, 2.0], requires_grad=True)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with torch.autograd.detect_anomaly():
        loss = torch.sqrt(x.sum() * 0 - 1)
        try:
            loss.backward()
        except RuntimeError as error:
            print("RuntimeError:", error)
            assert "returned nan values in its 0th output" in str(error)
        else:
            raise AssertionError("anomaly mode let a NaN gradient through")
assert x.grad is None  # the error stopped backward before anything was accumulated

law("anomaly.nan-gradient-names-the-node")

# %%
law("anomaly.check-nan-can-be-turned-off")

# %%
# .. _anomaly-traceback:
#
# The warning shows where the forward recorded the node
# -----------------------------------------------------
#
# Alongside the error, anomaly mode emits a ``UserWarning`` "Error detected in <node>" followed
# by the traceback of the forward call that created the node. The traceback exists only if anomaly
# mode was already on while the forward ran; otherwise the warning says that no forward pass
# information is available.
messages = [str(w.message) for w in caught]
assert any("Anomaly Detection has been enabled" in m for m in messages)
detected = [m for m in messages if m.startswith("Error detected in")]
assert detected and "Traceback of forward call that caused the error" in detected[0]
print(detected[0].splitlines()[0])

law("anomaly.error-shows-the-forward-call")

# %%
# .. _anomaly-scope:
#
# Anomaly mode is global, grad mode is per thread
# -----------------------------------------------
#
# ``detect_anomaly()`` and ``set_detect_anomaly(True)`` switch a process-wide setting: a thread
# started inside the block runs in anomaly mode too. Grad mode differs: ``no_grad`` affects only
# the thread that entered it. Use the context-manager forms, which restore the previous setting on
# exit, rather than calling ``set_detect_anomaly(True)`` and forgetting to turn it off: it slows
# every backward in the process down, and changes no gradient.
seen = []
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    with torch.autograd.set_detect_anomaly(True), torch.no_grad():
        worker = threading.Thread(target=lambda: seen.append((torch.is_anomaly_enabled(), torch.is_grad_enabled())))
        worker.start()
        worker.join()
assert seen == [(True, True)]
assert not torch.is_anomaly_enabled()  # restored on exit

law("anomaly.mode-is-process-global")

# %%
law("anomaly.gradients-are-unchanged")

# %%
# APIs used on this page: ``torch.autograd.detect_anomaly``, ``torch.autograd.set_detect_anomaly``,
# ``torch.is_anomaly_enabled``, ``torch.is_anomaly_check_nan_enabled``, ``torch.no_grad``,
# ``torch.is_grad_enabled``.

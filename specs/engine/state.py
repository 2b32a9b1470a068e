"""Process state that a rule or test must not leak: grad mode, anomaly mode, dtype, seeds."""
from __future__ import annotations

import random
from dataclasses import dataclass, fields

import torch


@dataclass(frozen=True)
class GlobalState:
    grad_enabled: bool
    inference_mode: bool
    anomaly_enabled: bool
    anomaly_check_nan: bool
    default_dtype: torch.dtype

    @classmethod
    def capture(cls) -> "GlobalState":
        check_nan = getattr(torch, "is_anomaly_check_nan_enabled", lambda: True)()
        return cls(
            grad_enabled=torch.is_grad_enabled(),
            inference_mode=torch.is_inference_mode_enabled(),
            anomaly_enabled=torch.is_anomaly_enabled(),
            anomaly_check_nan=check_nan,
            default_dtype=torch.get_default_dtype(),
        )

    def restore(self) -> None:
        # Inference mode can only be left by its context manager's own exit, so a leak of it is
        # reported but not undone.
        torch.set_grad_enabled(self.grad_enabled)
        try:
            torch.autograd.set_detect_anomaly(self.anomaly_enabled, check_nan=self.anomaly_check_nan)
        except TypeError:  # releases before check_nan existed
            torch.autograd.set_detect_anomaly(self.anomaly_enabled)
        torch.set_default_dtype(self.default_dtype)

    def differences(self, other: "GlobalState") -> list[str]:
        return [
            f"{f.name}: {getattr(self, f.name)} -> {getattr(other, f.name)}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


class Isolated:
    """Context manager: restores global state and RNG seeds on exit, and reports what leaked."""

    def __enter__(self) -> "Isolated":
        self.before = GlobalState.capture()
        self.torch_rng = torch.get_rng_state()
        self.python_rng = random.getstate()
        self.leaks: list[str] = []
        return self

    def __exit__(self, *exc_info) -> None:
        after = GlobalState.capture()
        self.leaks = self.before.differences(after)
        if self.leaks:
            self.before.restore()
        torch.set_rng_state(self.torch_rng)
        random.setstate(self.python_rng)

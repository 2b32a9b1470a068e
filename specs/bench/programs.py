"""The benchmarks' programs: generated the same on every release, and sized to a time budget."""

from __future__ import annotations

import random

#: Ops of the benchmark programs: (name, arity, template). Values stay in [-1, 1] and never decay
#: geometrically towards 0, so no run meets denormal floats (which are many times slower).
PROGRAM_OPS: tuple[tuple[str, int, str], ...] = (
    ("tanh", 1, "torch.tanh({0})"),
    ("sigmoid", 1, "torch.sigmoid({0})"),
    ("affine", 1, "{0} * 0.5 + 0.25"),
    ("add", 2, "torch.tanh({0} + {1})"),
    ("mul", 2, "{0} * {1} * 0.5 + 0.5"),
    ("matmul", 2, "torch.tanh(({0} @ {1}) * 0.0625)"),
)
PROGRAM_SIDE = 32


def program(n_ops: int, seed: int = 0, side: int = PROGRAM_SIDE, leaves: int = 2):
    """A generated :class:`specs.generators.program.Program` of ``n_ops`` steps, the same on every release.

    hypothesis draws differ between hypothesis versions, and the benchmark environments of two torch
    releases may carry different ones; so these programs come from :class:`random.Random` with a
    fixed seed.  Values are ``side x side`` float32 matrices; the output is a scalar sum.
    """
    import torch

    from specs.generators.program import Program, Step, TensorSpec

    rng = random.Random(f"{seed}-{n_ops}-{side}")
    specs = tuple(
        TensorSpec(
            (side, side),
            torch.float32,
            "contiguous",
            tuple(rng.randint(-64, 64) / 64 for _ in range(side * side)),
            True,
        )
        for _ in range(leaves)
    )
    names = [f"x{i}" for i in range(leaves)]
    steps = []
    for k in range(n_ops):
        name, arity, template = PROGRAM_OPS[rng.randrange(len(PROGRAM_OPS))]
        # Mostly the newest values, so programs grow deep as well as wide.
        args = tuple(names[-1 - min(int(rng.expovariate(0.7)), len(names) - 1)] for _ in range(arity))
        steps.append(Step(f"v{k}", name, args, template.format(*args)))
        names.append(f"v{k}")
    used = {a for s in steps for a in s.args}
    loose = [n for n in names[:-1] if n not in used]
    joined = " + ".join(f"{n}.sum()" for n in [names[-1], *loose])
    steps.append(Step("out", "join", (names[-1], *loose), joined))
    return Program(specs, tuple(steps), "out")


def pedantic_rounds(function, budget_s: float = 0.3, most: int = 200, least: int = 8) -> int:
    """Rounds for ``benchmark.pedantic`` so that a timed run takes about ``budget_s`` seconds."""
    import time

    started = time.perf_counter()
    function()
    took = max(time.perf_counter() - started, 1e-6)
    return max(least, min(most, int(budget_s / took)))

"""
Data-parallel training: DistributedDataParallel
===============================================

Gradient accumulation simulates a larger batch in one process; ``DistributedDataParallel`` (DDP)
does it across processes. Each process runs the same model on its own share of the batch, and
during ``backward()`` DDP all-reduces the gradients so that every process ends up with their
average. The rules on this page run DDP for real: two processes on this machine, on the ``gloo``
backend over the loopback interface, started and stopped by the check itself. The oracle is plain
single-process autograd on the same weights and data.
"""

import torch

from specs.families.distributed import (
    WORLD,
    Case,
    full_batch_gradients,
    last_pids,
    local_gradients,
    shutdown,
    train,
)
from specs.rendering.demo import law

# %%
# .. _distributed-average:
#
# The average of the shards' gradients is the full batch's gradient
# ------------------------------------------------------------------
#
# With a loss that is a mean over samples and shards of equal size, the mean of the shards'
# gradients is the gradient of the mean over the whole batch. That identity is why averaging is
# the right reduction; here it is in one process, then the rule checks it on two.
case = Case(
    sizes=(2, 1),
    weights=((0.5, 1.0), (0.5,), (0.0, 0.0), (0.0,)),
    batches=((((1.0, -1.0, 0.5, 2.0), (0.25, 1.0)),), (((2.0, -1.0, 0.0, 1.0), (0.25, -0.5)),)),
)
shards = [local_gradients(case, rank, 0) for rank in range(WORLD)]
full = full_batch_gradients(case)
for name in full:
    assert torch.allclose((shards[0][name] + shards[1][name]) / WORLD, full[name])

# %%
# The two processes run the same code: wrap the model, run forward and backward on the rank's own
# samples, read ``.grad``. Every rank then holds the same gradient, the full batch's.
ranks = train(case)
for grads in ranks:
    for name in full:
        assert torch.allclose(grads[-1][name], full[name])

law("distributed.averaged-gradients-equal-full-batch")

# %%
# .. _distributed-no-sync:
#
# ``no_sync()``: accumulate locally, synchronise once
# ---------------------------------------------------
#
# Inside ``model.no_sync()`` backward does not communicate: each rank's ``.grad`` sums its own
# micro-batches, as in single-process accumulation. The first backward outside it all-reduces,
# and what it averages is everything accumulated so far, not just the last micro-batch. So
# ``k - 1`` steps under ``no_sync()`` and one synchronised step cost one all-reduce and give the
# gradient of ``k`` accumulated steps.
two_steps = Case(
    sizes=(2, 1),
    weights=((0.5, 1.0), (0.5,), (0.0, 0.0), (0.0,)),
    batches=tuple(tuple(((1.0 + rank, -1.0), (0.25 * step,)) for step in (1, 2)) for rank in range(WORLD)),
)
ranks = train(two_steps, local_steps=1)
own = [local_gradients(two_steps, rank, 0)["layers.0.weight"] for rank in range(WORLD)]
assert not torch.equal(ranks[0][0]["layers.0.weight"], ranks[1][0]["layers.0.weight"])  # not synchronised yet
assert all(torch.allclose(ranks[rank][0]["layers.0.weight"], own[rank]) for rank in range(WORLD))
total = sum(local_gradients(two_steps, rank, step)["layers.0.weight"] for rank in range(WORLD) for step in (0, 1))
assert all(torch.allclose(ranks[rank][1]["layers.0.weight"], total / WORLD) for rank in range(WORLD))

law("distributed.no-sync-accumulates-locally")

# %%
# .. _distributed-unused:
#
# Parameters that a forward does not use
# --------------------------------------
#
# DDP waits, during backward, for a gradient for every parameter before it all-reduces. A
# parameter the forward did not use never gets one, so by default the reduction never finishes,
# and the *next* iteration's forward raises a ``RuntimeError`` that names
# ``find_unused_parameters``. With ``find_unused_parameters=True`` DDP walks the graph after each
# forward and marks unused parameters ready at once: a parameter used on some ranks gets the
# average with zeros from the others, and one used on none keeps ``.grad`` ``None``.
ranks = train(case, {"find_unused_parameters": True}, use_extra=(True, False))
used_on_rank_0 = local_gradients(case, 0, 0, extra=True, use_extra=True)["extra.weight"]
assert torch.allclose(ranks[1][-1]["extra.weight"], used_on_rank_0 / WORLD)

law("distributed.unused-parameters")

# %%
# .. _distributed-hooks:
#
# Communication hooks and buckets
# -------------------------------
#
# DDP all-reduces gradients in buckets (``bucket_cap_mb``), and a communication hook can replace
# the all-reduce of each bucket: ``fp16_compress_hook`` sends float16 values to halve the traffic.
# Neither the bucket size nor ``gradient_as_bucket_view`` changes the gradient; the fp16 hook
# changes it by float16 rounding only.
ranks = train(case, dict(hook="fp16_compress_hook", bucket_cap_mb=1e-6))
for name in full:
    assert torch.allclose(ranks[0][-1][name], full[name], rtol=2e-3, atol=2e-3)

law("distributed.hooks-and-buckets-keep-values")

# %%
# The two worker processes stop once they have been idle for two seconds, at exit, or when asked;
# either way none is left behind.
import os

workers = last_pids()
shutdown()
for pid in workers:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        continue
    raise AssertionError(f"worker process {pid} is still running")

# %%
# APIs used on this page: ``torch.nn.parallel.DistributedDataParallel`` (``no_sync``,
# ``find_unused_parameters``, ``bucket_cap_mb``, ``gradient_as_bucket_view``,
# ``register_comm_hook``), ``torch.distributed.algorithms.ddp_comm_hooks.default_hooks``
# (``allreduce_hook``, ``fp16_compress_hook``), ``torch.distributed.init_process_group`` (``gloo``),
# ``torch.multiprocessing`` (forkserver).

"""Data-parallel training: what DistributedDataParallel does to gradients, checked on two processes.

Every rule runs ``torch.nn.parallel.DistributedDataParallel`` (DDP) on the ``gloo`` backend in a
pair of processes on this machine (loopback only), started with ``torch.multiprocessing``
(forkserver: one clean process imports torch once, and each pair is forked from it in milliseconds,
where spawn re-imported torch in both workers, about 2 s each).  The pair is started once, serves every generated
case of every rule in turn (hypothesis draws the cases here, in the parent), and is stopped as
soon as it has been idle for :data:`IDLE_STOP_S` seconds, at interpreter exit, or when a request
fails or times out.  The oracle is plain single-process autograd on the same weights and data.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import itertools
import os
import queue
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
import types
from dataclasses import dataclass
from typing import Any

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase
from specs.engine.expect import Tolerance, Violation, expect, expect_close
from specs.engine.registry import Family, Feature, observe, record, rule
from specs.engine.sections import Section
from specs.generators.strategies import value_tuples

FAMILY = Family(
    name="distributed",
    title="Data-parallel training with DistributedDataParallel",
    summary="Two processes on the gloo backend: averaged gradients equal the full-batch gradient, "
    "no_sync() accumulates locally, unused parameters, communication hooks and buckets.",
    gallery="plot_99_distributed.py",
    # The worker pair serves every example of one rule, and stops when that rule's check ends.
    teardown=lambda: shutdown(),
)

WORLD = 2
#: The pair is stopped after this long without a request (the next request starts a new one).
IDLE_STOP_S = 2.0
#: A worker that hears nothing for this long exits by itself (its parent is gone or stuck).
WORKER_IDLE_EXIT_S = 60.0
#: Starting the pair (the fork server's imports, rendezvous) and one request may take this long.
START_TIMEOUT_S = 90.0
REQUEST_TIMEOUT_S = 30.0


def _gloo_available() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_gloo_available()


GLOO = Feature("torch.distributed with the gloo backend", _gloo_available)

#: DDP averages with one all-reduce (a sum, then a division by the world size): float64 rounding.
AVERAGED = Tolerance(1e-12, 1e-13, "float64: the all-reduce sums in another order than the full batch")
#: The fp16 compression hook sends float16 values: about 2**-11 relative error per value.
FP16 = Tolerance(2e-3, 2e-3, "fp16_compress_hook rounds every gradient to float16 (11-bit mantissa)")


# ------------------------------------------------------------------------------ the model
class Net(torch.nn.Module):
    """Linear layers with tanh between them and, when ``extra``, a head used only when asked."""

    def __init__(self, sizes: tuple[int, ...], extra: bool = False):
        super().__init__()
        self.layers = torch.nn.ModuleList(
            torch.nn.Linear(a, b, dtype=torch.float64) for a, b in itertools.pairwise(sizes)
        )
        self.extra = torch.nn.Linear(sizes[0], sizes[-1], dtype=torch.float64) if extra else None

    def forward(self, x: torch.Tensor, use_extra: bool = False) -> torch.Tensor:
        out = x
        for i, layer in enumerate(self.layers):
            out = layer(out)
            if i < len(self.layers) - 1:
                out = torch.tanh(out)
        return out + self.extra(x) if use_extra else out


@dataclass(frozen=True)
class Case:
    """Weights, and each rank's micro-batches: ``batches[rank][step]`` is ``(inputs, targets)``."""

    sizes: tuple[int, ...]
    weights: tuple[tuple[float, ...], ...]
    batches: tuple[tuple[tuple[tuple[float, ...], tuple[float, ...]], ...], ...]

    def model(self, extra: bool = False) -> Net:
        """The network with these weights (the extra head's are the last ones, used if ``extra``)."""
        net = Net(self.sizes, extra)
        with torch.no_grad():
            for parameter, values in zip(net.parameters(), self.weights):
                parameter.copy_(torch.tensor(values, dtype=torch.float64).reshape(parameter.shape))
        return net

    def batch(self, rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets = self.batches[rank][step]
        return (
            torch.tensor(inputs, dtype=torch.float64).reshape(-1, self.sizes[0]),
            torch.tensor(targets, dtype=torch.float64).reshape(-1, self.sizes[-1]),
        )

    def __repr__(self) -> str:
        return f"Case(sizes={self.sizes}, weights={self.weights}, batches={self.batches})"


def loss_of(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the samples of the squared error summed over outputs."""
    return ((output - targets) ** 2).sum(dim=1).mean()


@st.composite
def cases(draw, steps: int = 1, max_steps: int | None = None):
    """A small MLP's weights and, for each of the two ranks, micro-batches of the same size."""
    depth = draw(st.integers(1, 2), label="linear layers")
    sizes = tuple(draw(st.integers(1, 3), label="width") for _ in range(depth + 1))
    net = Net(sizes, extra=True)
    weights = tuple(draw(value_tuples(p.numel()), label="weights") for p in net.parameters())
    samples = draw(st.integers(1, 3), label="samples per rank and step")
    count = draw(st.integers(steps, max_steps or steps), label="steps")
    batches = tuple(
        tuple(
            (
                draw(value_tuples(samples * sizes[0]), label="inputs"),
                draw(value_tuples(samples * sizes[-1]), label="targets"),
            )
            for _ in range(count)
        )
        for _ in range(WORLD)
    )
    return Case(sizes, weights, batches)


# ------------------------------------------------------------------------------ the pair of processes
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(rank: int, port: int, log: str, inbox, outbox) -> None:
    """A worker: join the gloo group, then run the tasks the parent sends until told to stop."""
    import torch.distributed as dist

    # c10d's warnings go to the log file, which the parent shows when a request fails.
    with open(log, "w") as stream:
        os.dup2(stream.fileno(), 1)
        os.dup2(stream.fileno(), 2)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=datetime.timedelta(seconds=REQUEST_TIMEOUT_S))
    try:
        while True:
            try:
                item = inbox.get(timeout=WORKER_IDLE_EXIT_S)
            except queue.Empty:
                break
            if item is None:
                break
            task, payload = item
            try:
                outbox.put((rank, "ok", TASKS[task](rank, payload)))
            except Exception as exc:  # noqa: BLE001 - sent back to the parent, which judges it
                outbox.put((rank, "error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        dist.destroy_process_group()


@contextlib.contextmanager
def _bare_main():
    """Hide the caller's main module from the fork server while the workers start.

    Like spawn, the fork server re-runs the parent's main script in every child unless it is guarded by
    ``if __name__ == "__main__"``; a gallery page, a notebook or a user's script calling a rule is
    not, and the workers need nothing from it (their target lives in this module).
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class Pair:
    """Two worker processes in one gloo group; :meth:`stop` leaves no process behind."""

    def __init__(self) -> None:
        import torch.multiprocessing as mp

        context = mp.get_context("forkserver")
        # The server imports torch, torch._dynamo (which DDP's constructor imports: 1.5 s) and this
        # module once; every pair forked from it starts with them.  It never runs an operator, so
        # forking it is safe where forking this process (whose OpenMP threads may run) is not.
        context.set_forkserver_preload(["torch", "torch._dynamo", "torch.nn.parallel", __name__])
        self.port = _free_port()
        self.folder = tempfile.mkdtemp(prefix="autograd-spec-ddp-")
        self.logs = [os.path.join(self.folder, f"rank{rank}.log") for rank in range(WORLD)]
        self.inboxes = [context.Queue() for _ in range(WORLD)]
        self.outbox = context.Queue()
        self.processes = [
            context.Process(
                target=_serve,
                args=(rank, self.port, self.logs[rank], self.inboxes[rank], self.outbox),
                daemon=True,
                name=f"autograd-spec-ddp-{rank}",
            )
            for rank in range(WORLD)
        ]
        self.fresh = True
        with _bare_main():
            for process in self.processes:
                process.start()

    def request(self, task: str, payload: Any) -> list[Any]:
        """Run ``task`` on both ranks; return each rank's result, or raise with what went wrong."""
        limit = START_TIMEOUT_S if self.fresh else REQUEST_TIMEOUT_S
        self.fresh = False
        for inbox in self.inboxes:
            inbox.put((task, payload))
        answers: dict[int, tuple[str, Any]] = {}
        deadline = time.monotonic() + limit
        while len(answers) < WORLD:
            try:
                rank, status, value = self.outbox.get(timeout=0.2)
                answers[rank] = (status, value)
                if status == "error":  # the other rank may be waiting in a collective: short grace
                    deadline = min(deadline, time.monotonic() + 5.0)
            except queue.Empty:
                dead = [p.name for p in self.processes if not p.is_alive()]
                if dead or time.monotonic() > deadline:
                    raise PairBroken(
                        f"task {task!r}: "
                        + (f"{dead} exited" if dead else f"no answer in {limit:.0f} s")
                        + f"; answers so far: {answers}"
                        + self.log_tail()
                    ) from None
        errors = {rank: value for rank, (status, value) in answers.items() if status == "error"}
        if errors:
            raise PairBroken(f"task {task!r} raised on rank(s) {sorted(errors)}: " + errors[min(errors)])
        return [answers[rank][1] for rank in range(WORLD)]

    def log_tail(self, limit: int = 1500) -> str:
        parts = []
        for rank, path in enumerate(self.logs):
            with contextlib.suppress(OSError), open(path) as stream:
                text = stream.read()[-limit:].strip()
                if text:
                    parts.append(f"\nrank {rank}'s output:\n{text}")
        return "".join(parts)

    def stop(self) -> None:
        for inbox in self.inboxes:
            with contextlib.suppress(Exception):
                inbox.put(None)
        for process in self.processes:
            process.join(timeout=5.0)
        for process in self.processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=5.0)
        for q in (*self.inboxes, self.outbox):
            q.close()
            q.join_thread()
        shutil.rmtree(self.folder, ignore_errors=True)

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]


class PairBroken(RuntimeError):
    """The worker pair failed, timed out or raised; it has been stopped."""


_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"pair": None, "timer": None, "pids": []}


def on_pair(task: str, payload: Any) -> list[Any]:
    """Run ``task(rank, payload)`` on both ranks of the (possibly new) worker pair."""
    with _LOCK:
        if _STATE["timer"] is not None:
            _STATE["timer"].cancel()
        if _STATE["pair"] is None:
            _STATE["pair"] = Pair()
            _STATE["pids"] = _STATE["pair"].pids()
        try:
            return _STATE["pair"].request(task, payload)
        except PairBroken:
            _stop_locked()
            raise
        finally:
            if _STATE["pair"] is not None:
                timer = threading.Timer(IDLE_STOP_S, shutdown)
                timer.daemon = True
                timer.start()
                _STATE["timer"] = timer


def _stop_locked() -> None:
    pair, _STATE["pair"] = _STATE["pair"], None
    if pair is not None:
        pair.stop()


def shutdown() -> None:
    """Stop the worker pair now, if one is running (also run at interpreter exit)."""
    with _LOCK:
        if _STATE["timer"] is not None:
            _STATE["timer"].cancel()
            _STATE["timer"] = None
        _stop_locked()


def last_pids() -> list[int]:
    """The process ids of the most recently started pair (to check that none is left)."""
    return list(_STATE["pids"])


atexit.register(shutdown)


# ------------------------------------------------------------------------------ tasks (run in the workers)
def _grads(module: torch.nn.Module) -> dict[str, list[float] | None]:
    # Plain lists travel through the queue without a shared-memory segment per tensor.
    return {name: None if p.grad is None else p.grad.flatten().tolist() for name, p in module.named_parameters()}


def _as_tensors(answer: dict[str, list[float] | None], like: torch.nn.Module) -> dict[str, torch.Tensor | None]:
    return {
        name: None if answer[name] is None else torch.tensor(answer[name], dtype=p.dtype).reshape(p.shape)
        for name, p in like.named_parameters()
    }


def _ddp(case: Case, options: dict[str, Any], extra: bool = False):
    from torch.nn.parallel import DistributedDataParallel

    hook = options.pop("hook", None)
    model = DistributedDataParallel(case.model(extra), **options)
    if hook is not None:
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

        model.register_comm_hook(None, getattr(default_hooks, hook))
    return model


def _train(rank: int, payload: dict[str, Any]) -> list[dict[str, torch.Tensor | None]]:
    """Steps under ``no_sync()`` for all but the last ``synced`` steps; the gradients after each step."""
    case, options, local = payload["case"], dict(payload["options"]), payload["local_steps"]
    use_extra = payload["use_extra"]
    model = _ddp(case, options, extra=use_extra is not None)
    use_extra = bool(use_extra and use_extra[rank])
    after = []
    for step in range(len(case.batches[rank])):
        inputs, targets = case.batch(rank, step)
        with model.no_sync() if step < local else contextlib.nullcontext():
            loss_of(model(inputs, use_extra), targets).backward()
        after.append(_grads(model.module))
    return after


def _unused_without_detection(rank: int, payload: dict[str, Any]) -> dict[str, Any]:
    """A second iteration after one that left parameters unused must raise, in its forward."""
    case, contract = payload["case"], payload["contract"]
    model = _ddp(case, {"find_unused_parameters": False}, extra=True)
    inputs, targets = case.batch(rank, 0)
    loss_of(model(inputs, False), targets).backward()
    try:
        message = contract.check(lambda: loss_of(model(inputs, False), targets), backward=lambda loss: loss.backward())
    except Violation as violation:  # judged in the parent, which raises it with the case
        return {"violation": (violation.what, str(violation.expected), str(violation.observed))}
    return {"message": message}


TASKS = {"train": _train, "unused-without-detection": _unused_without_detection}


# ------------------------------------------------------------------------------ in the parent
def train(
    case: Case, options: dict[str, Any] | None = None, local_steps: int = 0, use_extra: tuple[bool, ...] | None = None
) -> list[list[dict[str, torch.Tensor | None]]]:
    """Run ``case`` under DDP on the pair: ``[rank][step]`` -> each parameter's ``.grad`` after that step.

    The first ``local_steps`` steps run under ``no_sync()``; ``use_extra`` (one flag per rank) adds
    the extra head to the model and says on which ranks the forward uses it.
    """
    payload = dict(case=case, options=dict(options or {}), local_steps=local_steps, use_extra=use_extra)
    like = case.model(extra=use_extra is not None)
    return [[_as_tensors(step, like) for step in steps] for steps in on_pair("train", payload)]


def local_gradients(case: Case, rank: int, step: int, extra: bool = False, use_extra: bool = False):
    """Plain single-process autograd: the gradient of one rank's loss on one micro-batch."""
    net = case.model(extra)
    inputs, targets = case.batch(rank, step)
    loss = loss_of(net(inputs, use_extra), targets)
    names = [name for name, _ in net.named_parameters()]
    grads = torch.autograd.grad(loss, list(net.parameters()), allow_unused=True)
    return {n: torch.zeros_like(p) if g is None else g for n, p, g in zip(names, net.parameters(), grads)}


def full_batch_gradients(case: Case, step: int = 0) -> dict[str, torch.Tensor]:
    """The gradient of the mean loss over every rank's samples together, in one process."""
    net = case.model()
    inputs = torch.cat([case.batch(rank, step)[0] for rank in range(WORLD)])
    targets = torch.cat([case.batch(rank, step)[1] for rank in range(WORLD)])
    loss_of(net(inputs), targets).backward()
    return {name: p.grad for name, p in net.named_parameters()}


def repro(case: Case, call: str = "train(case)") -> str:
    """Code that reruns ``call`` on ``case``: the gradients of each rank after each step."""
    return f"from specs.families.distributed import Case, train\ncase = {case!r}\nprint({call})"


def _compare(
    got: dict[str, Any],
    want: dict[str, torch.Tensor],
    tolerance: Tolerance,
    what: str,
    case: Case,
    call: str = "train(case)",
):
    for name, expected in want.items():
        expect_close(got[name], expected, tolerance=tolerance, what=f"{what}: {name}", repro=repro(case, call))


def _record_grads(name: str, grads: dict[str, torch.Tensor | None]) -> None:
    record(name, {k: None if g is None else [round(v, 6) for v in g.flatten().tolist()] for k, g in grads.items()})


def _canonical(steps: int = 1) -> Case:
    net = Net((2, 1), extra=True)
    weights = tuple(tuple(0.5 * (i + 1) for i in range(p.numel())) for p in net.parameters())
    batches = tuple(tuple(((1.0 + rank, -1.0), (0.25 * (step + 1),)) for step in range(steps)) for rank in range(WORLD))
    return Case((2, 1), weights, batches)


CANONICAL = _canonical()
CANONICAL_ACCUMULATION = _canonical(steps=3)


# ------------------------------------------------------------------------------ rules
#: Each example is a round trip to two worker processes: fewer of them under the everyday profiles.
DDP_EXAMPLES = 8


@rule(
    "distributed.averaged-gradients-equal-full-batch",
    section=Section.ACCUMULATION,
    docs="distributed-average",
    given=dict(case=cases()),
    requires=(GLOO,),
    examples=(dict(case=CANONICAL),),
    max_examples=DDP_EXAMPLES,
    references=(
        "docs: DistributedDataParallel (torch.nn.parallel) > gradients are averaged across processes",
        "docs: Distributed Data Parallel design note > Backward pass",
    ),
)
def averaged_gradients_equal_full_batch(case):
    """After one backward under DistributedDataParallel, every rank holds the same gradient, equal to the single-process gradient of the mean loss over all ranks' equally sized batches together."""
    ranks = train(case)
    want = full_batch_gradients(case)
    for rank, steps in enumerate(ranks):
        _compare(steps[-1], want, AVERAGED, f"rank {rank}'s averaged gradient against the full-batch gradient", case)
    _record_grads("gradient", ranks[0][-1])


@rule(
    "distributed.no-sync-accumulates-locally",
    section=Section.ACCUMULATION,
    docs="distributed-no-sync",
    given=dict(case=cases(steps=2, max_steps=3)),
    requires=(GLOO,),
    max_examples=DDP_EXAMPLES,
    examples=(dict(case=CANONICAL_ACCUMULATION),),
    references=("docs: DistributedDataParallel.no_sync",),
)
def no_sync_accumulates_locally(case):
    """Backward passes inside no_sync() accumulate each rank's own gradient without communicating, and the next backward outside it averages each rank's whole accumulated sum across the ranks."""
    steps = len(case.batches[0])
    ranks = train(case, local_steps=steps - 1)
    local = [[local_gradients(case, rank, step) for step in range(steps)] for rank in range(WORLD)]
    names = list(local[0][0])
    for rank in range(WORLD):
        for step in range(steps - 1):
            running = {n: sum(local[rank][s][n] for s in range(step + 1)) for n in names}
            _compare(
                ranks[rank][step],
                running,
                AVERAGED,
                f"rank {rank}'s gradient after {step + 1} backward(s) under no_sync(): its own sum",
                case,
                f"train(case, local_steps={steps - 1})",
            )
    total = {n: sum(sum(local[rank][s][n] for s in range(steps)) for rank in range(WORLD)) / WORLD for n in names}
    for rank in range(WORLD):
        _compare(
            ranks[rank][-1],
            total,
            AVERAGED,
            f"rank {rank}'s gradient after the synchronised backward: the average of the ranks' sums",
            case,
            f"train(case, local_steps={steps - 1})",
        )
    _record_grads("gradient after the local steps (rank 0)", ranks[0][-2])
    _record_grads("gradient after the synchronised step", ranks[0][-1])


UNUSED_CONTRACT = ErrorContract(
    RuntimeError,
    r"(?s)Expected to have finished reduction in the prior iteration.*find_unused_parameters",
    Phase.RECORD,
    wording="raised by the forward of the iteration after the one that left parameters unused",
)


@rule(
    "distributed.unused-parameters",
    section=Section.ACCUMULATION,
    docs="distributed-unused",
    given=dict(case=cases(), use_extra=st.sampled_from([(False, False), (True, False), (False, True)])),
    requires=(GLOO,),
    contracts=(UNUSED_CONTRACT,),
    max_examples=DDP_EXAMPLES,
    examples=(dict(case=CANONICAL, use_extra=(True, False)),),
    references=("docs: DistributedDataParallel > find_unused_parameters",),
)
def unused_parameters(case, use_extra):
    """With find_unused_parameters=True a parameter unused on some ranks gets the average with zeros for those ranks and one unused on every rank keeps .grad None, while without it the next iteration's forward raises a RuntimeError naming find_unused_parameters."""
    ranks = train(case, {"find_unused_parameters": True}, use_extra=use_extra)
    local = [local_gradients(case, rank, 0, extra=True, use_extra=use_extra[rank]) for rank in range(WORLD)]
    averaged = {n: (local[0][n] + local[1][n]) / WORLD for n in local[0]}
    for rank, steps in enumerate(ranks):
        got = steps[-1]
        if not any(use_extra):
            for name in ("extra.weight", "extra.bias"):
                expect(
                    got[name] is None,
                    what=f"rank {rank}: .grad of {name}, unused on every rank",
                    expected=None,
                    observed=got[name],
                    repro=repro(case, f"train(case, {{'find_unused_parameters': True}}, use_extra={use_extra})"),
                )
            averaged = {n: g for n, g in averaged.items() if not n.startswith("extra.")}
        _compare(
            got,
            averaged,
            AVERAGED,
            f"rank {rank}'s gradient (extra head used on ranks {use_extra})",
            case,
            f"train(case, {{'find_unused_parameters': True}}, use_extra={use_extra})",
        )
    for rank, outcome in enumerate(on_pair("unused-without-detection", dict(case=case, contract=UNUSED_CONTRACT))):
        if "violation" in outcome:
            what, expected, observed = outcome["violation"]
            raise Violation(
                f"rank {rank}, without find_unused_parameters: {what}",
                expected,
                observed,
                repro(case, "on_pair('unused-without-detection', dict(case=case, contract=UNUSED_CONTRACT))").replace(
                    "import Case, train", "import UNUSED_CONTRACT, Case, on_pair"
                ),
            )
    observe(f"RuntimeError: {outcome['message']}")
    record("error without find_unused_parameters", outcome["message"].split(".")[0])
    _record_grads("gradient with find_unused_parameters", ranks[0][-1])


HOOKS = (None, "allreduce_hook", "fp16_compress_hook")


@rule(
    "distributed.hooks-and-buckets-keep-values",
    section=Section.ACCUMULATION,
    docs="distributed-hooks",
    given=dict(
        case=cases(),
        hook=st.sampled_from(HOOKS),
        bucket_cap_mb=st.sampled_from([1e-6, 25.0]),
        bucket_view=st.booleans(),
    ),
    requires=(GLOO,),
    max_examples=DDP_EXAMPLES,
    examples=(dict(case=CANONICAL, hook="fp16_compress_hook", bucket_cap_mb=1e-6, bucket_view=True),),
    references=(
        "docs: DDP Communication Hooks > Default Communication Hooks",
        "docs: DistributedDataParallel > bucket_cap_mb, gradient_as_bucket_view",
    ),
)
def hooks_and_buckets_keep_values(case, hook, bucket_cap_mb, bucket_view):
    """The built-in allreduce and fp16-compression communication hooks, the bucket size and gradient_as_bucket_view leave the averaged gradient unchanged, up to float16 rounding for the fp16 hook."""
    options = dict(hook=hook, bucket_cap_mb=bucket_cap_mb, gradient_as_bucket_view=bucket_view)
    ranks = train(case, options)
    tolerance = FP16 if hook == "fp16_compress_hook" else AVERAGED
    want = full_batch_gradients(case)
    for rank, steps in enumerate(ranks):
        _compare(steps[-1], want, tolerance, f"rank {rank}'s gradient with {options}", case, f"train(case, {options})")
    expect(
        all(torch.equal(ranks[0][-1][n], ranks[1][-1][n]) for n in want),
        what="every rank holds the same gradient",
        expected="equal",
        observed="different",
    )
    if hook == "fp16_compress_hook":
        error = max((ranks[0][-1][n] - want[n]).abs().max().item() for n in want)
        record("fp16 hook: largest absolute error", round(error, 6))
    _record_grads("gradient", ranks[0][-1])

"""Generated programs draw their steps from the derivative atlas too: how many distinct ops 500
derandomized programs reach."""

import hypothesis
from hypothesis import given

from specs.generators.strategies import ATLAS_OPS, OPS, programs

PROGRAMS = 500


def test_programs_reach_many_distinct_ops():
    reached: set[str] = set()

    @hypothesis.settings(
        max_examples=PROGRAMS,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @given(programs())
    def collect(program):
        reached.update(step.op for step in program.steps if step.op != "join")

    collect()
    atlas = {op.name for op in ATLAS_OPS} & reached
    print(
        f"{PROGRAMS} derandomized programs reach {len(reached)} of {len(OPS)} ops, {len(atlas)} of "
        f"{len(ATLAS_OPS)} atlas ops"
    )
    assert len(atlas) >= len(ATLAS_OPS) * 3 // 4, f"only {sorted(atlas)} of the atlas ops were reached"
    assert len(reached) >= 40


def test_an_atlas_step_runs_its_entry_code():
    from specs.atlas.table import TABLE

    step = next(op for op in ATLAS_OPS if op.name == "F.gelu(a)")
    template, _, bound = step.plan(None, [(2,)], [2.0])
    assert TABLE["F.gelu(a)"].code in template and bound == 2.2

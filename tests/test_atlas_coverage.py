"""The atlas covers PyTorch's own list of differentiable ops: at least 80 % of the OpInfo
entries that support autograd, counted by the callables the atlas actually calls."""

import pytest
import torch

from specs.atlas import coverage
from specs.engine import versions

pytest.importorskip("expecttest", reason="torch.testing._internal needs expecttest to import op_db")

TARGET = 0.80


def test_atlas_covers_most_opinfo_autograd_ops():
    result = coverage.measure()
    total = len(result.covered) + len(result.uncovered)
    print(
        f"atlas covers {len(result.covered)} of {total} OpInfo autograd ops on torch "
        f"{torch.__version__} ({result.fraction:.1%}); not covered: {', '.join(result.uncovered)}"
    )
    assert total > 0
    if versions.installed_text() == "2.13.0":
        assert result.fraction >= TARGET, (
            f"the atlas covers {result.fraction:.1%} of OpInfo autograd ops, below {TARGET:.0%}; "
            f"not covered: {', '.join(result.uncovered)}"
        )


def test_coverage_counts_calls_not_names():
    seen = coverage.called()
    assert torch.atan2 in seen, "the atlas calls torch.atan2 (torch.atan2(a, b))"
    assert torch.nn.functional.one_hot not in seen, "no atlas entry calls one_hot, whatever its text says"


def test_edges_page_lists_every_point_and_release():
    from specs.atlas import edges
    from specs.atlas.table import TABLE

    key = "torch.clamp(a, -0.5, 1.0) @ bound at 1"
    text = edges.render(
        {"2.13.0": {key: {"gradient": [[1.0]]}}, "2.14.1": {}},
        {"2.13.0": {key: {"torch": [1.0], "minimum-norm": [0.0]}}},
    )
    assert text.count("   * - ``") == sum(len(e.points) for e in TABLE.values())
    assert "departs on 2.13.0" in text and "``[[1.0]]``" in text and "     - 2.14.1" in text


def test_edges_page_shows_the_opinfo_coverage_of_each_release():
    from specs.atlas import edges

    coverage = {
        "2.13.0": {"opinfo_autograd_ops": 4, "covered": 3, "fraction": 0.75, "uncovered": ["vander"]},
        "2.14.1": {"opinfo_autograd_ops": 5, "covered": 3, "fraction": 0.6, "uncovered": ["vander", "new_op"]},
    }
    text = edges.render({"2.13.0": {}, "2.14.1": {}}, {}, coverage)
    assert "   * - 2.13.0\n     - 3 of 4\n     - 75.0%\n     - ``vander``" in text
    assert "   * - 2.14.1\n     - 3 of 5\n     - 60.0%\n     - ``vander``, ``new_op``" in text
    assert "No committed report holds this measurement yet." in edges.render({"2.13.0": {}}, {})


def test_the_minimum_norm_law_records_an_op_without_a_derivative_instead_of_failing(monkeypatch):
    """aminmax has no derivative before 2.12: the law has no gradient to judge there, and says so."""
    from specs.engine import registry
    from specs.families import atlas

    def missing(name, index, scale):
        raise RuntimeError("derivative for aten::aminmax is not implemented")

    monkeypatch.setattr(atlas, "min_norm_departure", missing)
    seen = {}
    monkeypatch.setattr(atlas, "record", lambda name, value: seen.__setitem__(name, value))
    registry.get("atlas.kinks-take-the-minimum-norm-subgradient").function(point=atlas.EVERY_POINT, scale=1.0)
    assert seen["departures"] == {} and seen["derivative not implemented"]
    assert all(
        v.startswith("RuntimeError: derivative for aten::aminmax") for v in seen["derivative not implemented"].values()
    )

    def broken(name, index, scale):
        raise RuntimeError("something else went wrong")

    monkeypatch.setattr(atlas, "min_norm_departure", broken)
    with pytest.raises(RuntimeError, match="something else"):
        registry.get("atlas.kinks-take-the-minimum-norm-subgradient").function(point=atlas.EVERY_POINT, scale=1.0)

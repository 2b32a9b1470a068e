"""The specification itself: every registered rule as a hypothesis test.

``pytest --pyargs specs`` (or ``autograd-spec check``) collects this module; each rule becomes a
test named ``test_<family>__<rule>`` that is decorated with ``@given`` (and ``@example`` for its
canonical examples), so hypothesis' own pytest options apply.  The plugin (``specs.plugin``)
reports each rule's outcome.
"""

from specs.engine import registry


def test_family_modules_import():
    assert not registry.IMPORT_ERRORS, "family modules failed to import: " + "; ".join(
        f"specs.families.{module}: {error}" for module, error in sorted(registry.IMPORT_ERRORS.items())
    )
    assert registry.FAMILIES, "no family module was found under specs/families/"


def test_atlas_covers_opinfo_ops(record_property):
    """Not a rule: a measurement for the report.  Which of the installed torch's OpInfo entries that
    support autograd the atlas exercises (``specs.atlas.coverage``), so that the docs show the fraction
    per release and the diff shows the ops a release adds that the atlas does not cover yet."""
    import pytest

    try:
        from specs.atlas import coverage

        result = coverage.measure()
    except ImportError as error:  # op_db needs expecttest and torch's internal testing package
        pytest.skip(f"torch.testing._internal.common_methods_invocations.op_db does not import here: {error}")
    total = len(result.covered) + len(result.uncovered)
    assert total > 0, "op_db lists no op that supports autograd"
    record_property(
        "autograd-spec-atlas-coverage",
        {
            "opinfo_autograd_ops": total,
            "covered": len(result.covered),
            "fraction": round(result.fraction, 4),
            "uncovered": list(result.uncovered),
        },
    )


for _rule in registry.rules():
    globals()[_rule.test_name] = _rule.hypothesis_test()
del _rule

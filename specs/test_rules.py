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


for _rule in registry.rules():
    globals()[_rule.test_name] = _rule.hypothesis_test()
del _rule

"""The committed reports are the matrix's evidence: one per release of the matrix, each a complete run
of the current registry.  A rule added without regenerating them fails here (regenerate with
`nox -s matrix` and copy build/reports/torch-*.json to reports/; do not leave holes)."""

from pathlib import Path

import pytest

from specs.engine import registry
from specs.reporting import releases, report

REPORTS = Path(__file__).resolve().parents[1] / "reports"


@pytest.mark.parametrize("release", releases.MATRIX)
def test_every_release_of_the_matrix_has_a_committed_report(release):
    path = REPORTS / f"torch-{release}.json"
    assert path.is_file(), f"no committed report for torch {release}: run `nox -s matrix -- {release}`"


@pytest.mark.parametrize("release", releases.MATRIX)
def test_a_committed_report_holds_every_registered_rule(release):
    path = REPORTS / f"torch-{release}.json"
    if not path.is_file():
        pytest.skip(f"no committed report for torch {release} (the test above fails for it)")
    data = report.load(path)
    assert data["environment"]["torch"].split("+")[0] == release, f"{path.name} is a run of another torch"
    assert data["environment"].get("profile") == "ci", f"{path.name} is not a run of the ci profile"
    assert data.get("complete"), f"{path.name} is from a partial run"
    registered = {rule.id for rule in registry.rules()}
    recorded = {rule["id"] for rule in data["rules"]}
    missing, extra = sorted(registered - recorded), sorted(recorded - registered)
    assert not missing and not extra, (
        f"{path.name} is stale: missing {missing[:10]}{'…' if len(missing) > 10 else ''} "
        f"({len(missing)} rules), no longer registered {extra[:10]} ({len(extra)}); "
        f"regenerate it with `nox -s matrix -- {release}` and copy build/reports/torch-{release}.json"
    )

"""The GitHub Actions workflow that fans the matrix out: valid against the workflow schema, and wired to the one list."""

import subprocess
import sys
from pathlib import Path

import pytest

check_jsonschema = pytest.importorskip(
    "check_jsonschema", reason="check-jsonschema (which bundles GitHub's workflow schema) is not installed"
)

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "matrix.yml"


def _validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_workflow_is_valid_against_the_github_workflow_schema():
    done = _validate(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "matrix.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest", 1))
    assert _validate(broken).returncode != 0


def test_one_job_per_release_of_the_one_list_and_a_final_pages_job():
    from ruamel.yaml import YAML

    jobs = YAML(typ="safe").load(WORKFLOW.read_text())["jobs"]
    assert "from specs.reporting.releases import MATRIX" in jobs["plan"]["steps"][-1]["run"]
    assert jobs["release"]["strategy"]["matrix"]["torch"] == "${{ fromJSON(needs.plan.outputs.releases) }}"
    assert jobs["release"]["strategy"]["fail-fast"] is False
    uploads = [s for s in jobs["release"]["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["with"]["path"] == "build/reports/torch-${{ matrix.torch }}.json"
    assert jobs["pages"]["needs"] == "release"
    downloads = [s for s in jobs["pages"]["steps"] if str(s.get("uses", "")).startswith("actions/download-artifact")]
    assert downloads[0]["with"]["path"] == "reports/"

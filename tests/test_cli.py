"""The command line (``autograd-spec`` / ``python -m specs``) and the pytest plugin's activation."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from specs import cli


@pytest.mark.parametrize("command", [[], ["check"], ["diff"], ["matrix"]])
def test_help_exits_zero(command, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([*command, "--help"])
    assert stop.value.code == 0
    assert "usage: autograd-spec" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, says",
    [
        (["frob"], "invalid choice: 'frob'"),
        (["diff", "only-one.json"], "the following arguments are required: after"),
        (["matrix", "--frob"], "unrecognized arguments: --frob"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(argv, says, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err


def test_diff_of_a_missing_report_is_one_line(tmp_path, capsys):
    assert cli.main(["diff", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


def test_check_refuses_a_missing_known_failures_file(tmp_path, capsys):
    assert cli.main(["check", "--known-failures", str(tmp_path / "none.txt")]) == 2
    assert "does not exist" in capsys.readouterr().err


def _report(path, torch_version, outcomes):
    rules = [dict(id=i, family=i.split(".")[0], statement="s", since="1.13.1", outcome=o) for i, o in outcomes.items()]
    path.write_text(
        json.dumps({"schema": "autograd-spec/report/1", "environment": {"torch": torch_version}, "rules": rules})
    )


def test_matrix_lists_the_rules_that_change_first(tmp_path, capsys):
    _report(tmp_path / "torch-2.0.1.json", "2.0.1", {"a.same": "passed", "a.moves": "not-applicable"})
    _report(tmp_path / "torch-2.13.0.json", "2.13.0", {"a.same": "passed", "a.moves": "passed"})
    assert cli.main(["matrix", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "1 of 2 rules differ across 2 releases"
    assert out[2].split() == ["a.moves", "n/a", "ok"]
    assert not any("a.same" in line for line in out)


def test_matrix_of_an_empty_folder_is_an_error(tmp_path, capsys):
    assert cli.main(["matrix", str(tmp_path)]) == 2
    assert "no torch-*.json reports" in capsys.readouterr().err


def test_plugin_is_inert_in_another_projects_run(tmp_path):
    """Installed, the plugin loads in every pytest run; outside a spec run it changes nothing: the
    hypothesis profile (hypothesis' own ``ci`` one under CI, else ``default``) is the one without it."""
    (tmp_path / "test_other.py").write_text(
        textwrap.dedent(
            """
            import hypothesis

            def test_profile(record_property):
                current = hypothesis.settings.default
                print("PROFILE", hypothesis.settings.get_current_profile_name(), current.max_examples, current.derandomize)
            """
        )
    )

    def run(*plugin):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                *plugin,
                "-s",
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:randomly",
                str(tmp_path),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(Path(cli.__file__).parents[1])},
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    with_plugin, without = run("-p", "specs.plugin"), run("-p", "no:specs.plugin")
    profile = [line for line in with_plugin.splitlines() if line.startswith("PROFILE")]
    assert profile and profile == [line for line in without.splitlines() if line.startswith("PROFILE")]
    assert "autograd-spec" not in with_plugin
    assert not (tmp_path / "build").exists()


def test_the_main_process_takes_the_environment_a_worker_measured():
    """Under pytest-xdist the main process runs no test and does not import torch: the report's
    environment and rule count are what a worker measured and sent back (``workeroutput``)."""
    from types import SimpleNamespace

    from specs import plugin
    from specs.reporting import report as spec_report

    measured = {"environment": {**spec_report.environment("ci"), "torch": "measured-by-a-worker"}, "registered": 3}
    saved = plugin._MEASURED[0]
    try:
        plugin.pytest_testnodedown(SimpleNamespace(workeroutput={}), None)
        assert plugin._MEASURED[0] is saved
        plugin.pytest_testnodedown(SimpleNamespace(workeroutput={plugin._WORKER_OUTPUT: measured}), None)
        assert plugin._MEASURED[0] is measured
    finally:
        plugin._MEASURED[0] = saved
    data = spec_report.build([], "ci", 3, measured_environment=measured["environment"])
    assert data["environment"]["torch"] == "measured-by-a-worker" and data["registered_rules"] == 3

"""``nox -s release`` arguments: registry releases, wheel files, and the baseline, all without network."""

import json
import zipfile

import pytest

from specs.reporting import releases, report

INDEX = {"1.13.1", "2.0.1", "2.13.0", "2.14.1", "2.15.0"}


def _index():
    return INDEX


def _no_index():
    raise AssertionError("the package index was asked, though only wheels were given")


def _wheel(path, name="torch", version="2.16.0.dev20261101+cpu", metadata=True):
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{name}/__init__.py", "")
        if metadata:
            wheel.writestr(
                f"{name}-{version}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n"
            )
    return path


def test_a_registry_release_and_a_baseline():
    request = releases.parse_arguments(["2.15.0", "--baseline", "2.13.0"], _index)
    assert request.target == releases.Target("2.15.0") and request.baseline == releases.Target("2.13.0")
    assert request.target.requirements() == ["torch==2.15.0"]
    assert releases.Target("2.0.1").requirements() == ["torch==2.0.1", "numpy<2"]


def test_a_wheel_file_is_read_from_its_metadata(tmp_path):
    wheel = _wheel(tmp_path / "torch-2.16.0.dev20261101+cpu-cp311-cp311-linux_x86_64.whl")
    request = releases.parse_arguments([str(wheel), "--baseline", "2.15.0"], _index)
    assert request.target.version == "2.16.0.dev20261101+cpu" and request.target.wheel == wheel.resolve()
    assert request.target.label == "2.16.0.dev20261101+cpu"
    assert request.target.requirements() == [str(wheel.resolve())]
    assert releases.parse_arguments([str(wheel)], _no_index).baseline is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["2.99.0"], "torch 2.99.0 is not on the package index (it has 5 releases, 1.13.1 to 2.15.0)"),
        (["2.15.0", "--baseline", "2.12.7"], "torch 2.12.7 is not on the package index"),
        (["banana"], "'banana' is not a torch release"),
        (["1.12.1"], "older than the oldest supported release 1.13.1"),
        (["2.15.0", "--fast"], "usage: nox -s release -- RELEASE-OR-WHEEL"),
        ([], "usage: nox -s release --"),
        (["missing/torch-2.16.0-cp311-cp311-linux_x86_64.whl"], "does not exist"),
    ],
)
def test_bad_requests_fail_in_one_line(argv, message):
    with pytest.raises((releases.ReleaseError, SystemExit)) as caught:
        releases.parse_arguments(argv, _index)
    assert caught.type is releases.ReleaseError, f"argparse exited instead of one line: {argv}"
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"PK\x03\x04 truncated"), "not a readable wheel (corrupt or truncated"),
        (lambda p: p.write_text("not a zip"), "not a readable wheel"),
        (lambda p: _wheel(p, metadata=False), "has 0 METADATA files"),
        (lambda p: _wheel(p, name="numpy", version="2.1.0"), "a wheel of 'numpy', not torch"),
        (lambda p: _wheel(p, version="nightly"), "its version 'nightly' is not a torch release number"),
        (lambda p: _wheel(p, version="1.12.1"), "older than the oldest supported"),
    ],
)
def test_bad_wheels_fail_in_one_line(tmp_path, make, message):
    path = tmp_path / "torch-2.16.0-cp311-cp311-linux_x86_64.whl"
    make(path)
    with pytest.raises(releases.ReleaseError, match=message.replace("(", r"\(")):
        releases.parse_arguments([str(path)], _no_index)


def test_a_wheel_for_another_python_is_refused(tmp_path):
    wheel = _wheel(tmp_path / "torch-2.16.0-cp310-cp310-linux_x86_64.whl")
    with pytest.raises(releases.ReleaseError, match=r"built for cp310, but the environments use Python 3\.11"):
        releases.wheel_target(wheel, python=(3, 11))


def test_a_damaged_member_is_found_by_its_checksum(tmp_path):
    wheel = _wheel(tmp_path / "torch-2.16.0-cp311-cp311-linux_x86_64.whl")
    data = bytearray(wheel.read_bytes())
    data[data.index(b"Name: torch")] ^= 1  # flip a bit of METADATA's stored bytes
    wheel.write_bytes(bytes(data))
    with pytest.raises(releases.ReleaseError, match="corrupt|not a wheel of"):
        releases.wheel_target(wheel, python=(3, 11))


def test_the_package_index_listing_is_parsed():
    text = "torch (2.15.0)\nAvailable versions: 2.15.0, 2.13.0+cpu, 2.13.0, 1.13.1\n  INSTALLED: 2.13.0+cpu\n"
    assert releases.parse_index_output(text) == {"2.15.0", "2.13.0", "1.13.1"}
    assert releases.parse_index_output("ERROR: No matching distribution found for torch") == set()


def _report(profile="ci", rules=("a.one", "a.two"), complete=True, schema=report.SCHEMA, max_examples=25):
    return {
        "schema": schema,
        "complete": complete,
        "registered_rules": len(rules),
        "environment": {"torch": "2.13.0", "profile": profile, "max_examples": max_examples},
        "rules": [{"id": r, "outcome": "passed"} for r in rules],
    }


@pytest.mark.parametrize(
    "committed, source",
    [
        (_report(), "committed report reports/torch-2.13.0.json (profile ci, 2 rules)"),
        (_report(profile="dev"), "fresh run of torch 2.13.0, profile ci (the committed report is from profile dev)"),
        (_report(max_examples=1000), "ran 1000 examples a rule, not 25"),
        (_report(rules=("a.one",)), "the committed report lacks 1 of the rules"),
        (_report(complete=False), "it is from a partial run"),
        (_report(schema="autograd-spec/report/1"), "schema autograd-spec/report/1, without observations"),
        (None, "no usable committed report: report"),
    ],
)
def test_the_baseline_is_made_like_the_new_run(tmp_path, committed, source):
    if committed is not None:
        (tmp_path / "reports").mkdir()
        (tmp_path / "reports" / "torch-2.13.0.json").write_text(json.dumps(committed))
    baseline = releases.choose_baseline(releases.Target("2.13.0"), _report(), tmp_path)
    assert source in baseline.source
    assert (baseline.path is not None) == source.startswith("committed")


def test_a_report_is_current_only_when_complete_of_this_profile_and_newer_than_the_specs(tmp_path):
    sources = tmp_path / "specs"
    sources.mkdir()
    (sources / "rule.py").write_text("")
    path = tmp_path / "torch-2.0.1.json"
    path.write_text(json.dumps(_report()))
    import os

    os.utime(sources / "rule.py", (1, 1))
    assert releases.report_is_current(path, "ci", sources)
    assert not releases.report_is_current(path, "dev", sources)
    os.utime(sources / "rule.py")  # a rule changed after the run
    os.utime(path, (1, 1))
    assert not releases.report_is_current(path, "ci", sources)
    path.write_text(json.dumps(_report(complete=False)))
    assert not releases.report_is_current(path, "ci", sources)
    assert not releases.report_is_current(tmp_path / "missing.json", "ci", sources)


def test_the_matrix_is_the_newest_patch_of_every_minor_release():
    from specs.engine import versions

    parsed = [versions.parse(v) for v in releases.MATRIX]
    assert parsed == sorted(parsed) and releases.MATRIX[0] == versions.OLDEST_SUPPORTED
    minors = [v[:2] for v in parsed]
    assert len(set(minors)) == len(minors)
    assert (2, 13) in minors and (2, 0) in minors

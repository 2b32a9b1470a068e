"""What a run produced: the JSON report, diffs between reports, the conformance matrix and the catalogue."""

"""Run the suite with a fresh random seed, printed before and after, so a failure is reproduced exactly.

    python tests/random_seed_run.py [--seed N] [pytest arguments...]

One seed drives both hypothesis' examples (``--hypothesis-seed``) and the test order
(pytest-randomly's ``--randomly-seed``, which also reseeds ``random`` and numpy before each test).
The hypothesis profile is ``AUTOGRAD_SPEC_PROFILE``, ``dev`` by default: the ``ci`` profile is
derandomized and would ignore the seed, so it is refused.  The ``dev`` profile replays the
failures it saved in ``.hypothesis/`` first; a clean checkout (CI) has none, so there the seed alone
reproduces the run.  A failing example found this way belongs in its rule's ``examples=``.
"""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
import sys

PROFILE_VARIABLE = "AUTOGRAD_SPEC_PROFILE"
#: Profiles whose examples follow --hypothesis-seed (``ci`` is derandomized).
SEEDED_PROFILES = ("dev", "thorough")


def command(seed: int, pytest_args: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "randomly",
        f"--randomly-seed={seed}",
        f"--hypothesis-seed={seed}",
        "-p",
        "no:cacheprovider",
        *pytest_args,
    ]


def main(argv: list[str]) -> int:
    args = list(argv)
    seed = secrets.randbelow(2**32)
    if args[:1] == ["--seed"]:
        if len(args) < 2 or not args[1].isdigit():
            print("random_seed_run: --seed needs a non-negative integer", file=sys.stderr)
            return 2
        seed, args = int(args[1]), args[2:]
    profile = os.environ.get(PROFILE_VARIABLE, "dev")
    if profile not in SEEDED_PROFILES:
        print(
            f"random_seed_run: {PROFILE_VARIABLE}={profile} ignores the seed; use one of {SEEDED_PROFILES}",
            file=sys.stderr,
        )
        return 2
    again = f"{PROFILE_VARIABLE}={profile} python tests/random_seed_run.py --seed {seed} {shlex.join(args)}".rstrip()
    print(
        f"random-seed run: seed {seed}, profile {profile}; reproduce with: {again}",
        flush=True,
    )
    status = subprocess.call(command(seed, args), env={**os.environ, PROFILE_VARIABLE: profile})
    print(
        f"random-seed run: seed {seed} {'passed' if status == 0 else 'FAILED'}; reproduce with: {again}",
        flush=True,
    )
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Torch release numbers: parsing, comparison and the supported range."""

from __future__ import annotations

import re

#: The oldest torch release the suite supports; older ones are refused with a clear error.
OLDEST_SUPPORTED = "1.13.1"
#: The release the project runs against by default (a CPU wheel on this project's machines).
DEFAULT_TORCH = "2.13.0"

_RELEASE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:[.+-].*)?$")


class UnknownVersion(ValueError):
    """A string that is not a torch release number."""


def parse(version: str) -> tuple[int, int, int]:
    """``"2.13.0+cpu"`` -> ``(2, 13, 0)``; raises :class:`UnknownVersion` for anything else."""
    match = _RELEASE.match(str(version).strip())
    if not match:
        raise UnknownVersion(f"{version!r} is not a torch release number: expected MAJOR.MINOR[.PATCH], e.g. 2.13.0")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def check_release(version: str) -> str:
    """Validate a release a user asked for; return it normalised as ``MAJOR.MINOR.PATCH``."""
    text = str(version).strip()
    if not re.fullmatch(r"\d+\.\d+\.\d+", text):
        raise UnknownVersion(f"{version!r} is not a torch release: give MAJOR.MINOR.PATCH, such as {DEFAULT_TORCH}")
    if parse(text) < parse(OLDEST_SUPPORTED):
        raise UnknownVersion(f"torch {version} is older than the oldest supported release {OLDEST_SUPPORTED}")
    return text


def installed() -> tuple[int, int, int]:
    import torch

    return parse(torch.__version__)


def at_least(version: str) -> bool:
    """True when the installed torch is ``version`` or newer."""
    return installed() >= parse(version)


def installed_text() -> str:
    import torch

    return torch.__version__


def matches(spec: str, version: str) -> bool:
    """Whether ``version`` satisfies ``spec``: comma-separated clauses such as ``>=1.13.1,<2.16``."""
    target = parse(version)
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        match = re.fullmatch(r"(>=|<=|==|<|>)\s*(\S+)", clause)
        if not match:
            raise UnknownVersion(f"{clause!r} is not a version clause (use >=, <=, ==, < or > and a release)")
        op, bound = match.group(1), parse(match.group(2))
        ok = {
            ">=": target >= bound,
            "<=": target <= bound,
            "==": target == bound,
            "<": target < bound,
            ">": target > bound,
        }[op]
        if not ok:
            return False
    return True

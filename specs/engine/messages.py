"""Message templates: an error or warning message with the parts that vary by example or machine blanked.

Two releases are compared on templates, so a diff shows a change of wording and not a change of
tensor size, memory address or build machine.
"""

from __future__ import annotations

import re

#: (pattern, replacement), applied in this order; each names the noise it removes.
_NOISE = (
    # "(Triggered internally at /pytorch/aten/src/...cpp:123.)": where torch was built, not wording.
    (re.compile(r"\s*\(Triggered internally at [^)]*\)\.?"), ""),
    # absolute file paths (site-packages, build trees) with an optional :line suffix.
    (re.compile(r"(?:[A-Za-z]:)?(?:/[\w.@+-]+){2,}(?::\d+)?"), "<path>"),
    # memory addresses and other hex ids.
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "0x#"),
    (re.compile(r"\b[0-9a-f]{12,}\b"), "<id>"),
    # sizes: torch.Size([2, 3]), [2, 3], (2, 3).
    (re.compile(r"torch\.Size\(\[[0-9, ]*\]\)"), "[#]"),
    (re.compile(r"\[[0-9, ]*\]"), "[#]"),
    (re.compile(r"\((?:\d+, )+\d*\)"), "(#)"),
    # any other number: a version counter, an index, a value, a count.
    (re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w])"), "#"),
)
#: A number ending an identifier (ExpBackward0, sm_80) is an index; in a dtype name it is wording.
_IDENTIFIER_NUMBER = re.compile(r"\b([A-Za-z_]+?)(\d+)\b")
_DTYPE_STEMS = ("float", "int", "uint", "complex", "bfloat", "float8_e")


def template(message: str) -> str:
    """``message`` with build paths, addresses, hex ids, sizes and numbers blanked, spaces collapsed.

    >>> template("output 0 of ExpBackward0 is at version 3; expected version 2 instead.")
    'output # of ExpBackward# is at version #; expected version # instead.'
    """
    text = str(message)
    for pattern, replacement in _NOISE:
        text = pattern.sub(replacement, text)
    text = _IDENTIFIER_NUMBER.sub(
        lambda m: m.group(0) if m.group(1).lower() in _DTYPE_STEMS else m.group(1) + "#", text
    )
    # Tensor printouts pad their entries to one width, which depends on the values: "[ #, #]".
    return re.sub(r"([\[(])\s+", r"\1", re.sub(r"\s+", " ", text)).strip()

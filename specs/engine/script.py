"""Code that a rule runs and prints as its repro: one text, rendered once, executed as is.

A :class:`Script` is a template with named holes (``$name``, :class:`string.Template` syntax, so
Python's own braces need no escaping).  Rendering fills the holes once; :meth:`Script.run`
executes that text with :func:`exec` in a fresh namespace and returns the values it defined,
which the rule then asserts on.  The same text is the repro a failure prints, so the repro is
the code that ran, never a second string assembled to look like it.
"""

from __future__ import annotations

import contextlib
import io
import string
import textwrap
from typing import Any, Callable

IMPORT = "import torch"


def standalone(code: str) -> str:
    """``code`` as a script that runs on its own: with ``import torch`` first when it lacks it."""
    text = code.strip("\n") + "\n"
    if any(line.strip() == IMPORT for line in text.splitlines()):
        return text
    return f"{IMPORT}\n{text}"


class Namespace(dict):
    """The names a script defined (``ns.t`` or ``ns["t"]``) and what it printed (``ns.printed``)."""

    printed: str = ""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"the script defines no {name!r}") from None


class Script:
    """A script rendered from ``template`` with ``holes`` filled in; ``text`` is its repro."""

    def __init__(self, template: str, /, **holes: object) -> None:
        body = string.Template(textwrap.dedent(template).strip("\n")).substitute(
            {name: str(value) for name, value in holes.items()}
        )
        self.text = standalone(body)

    @classmethod
    def verbatim(cls, code: str) -> Script:
        """A script whose text is ``code`` exactly (already rendered: no holes are filled)."""
        script = cls.__new__(cls)
        script.text = standalone(code)
        return script

    def then(self, template: str, /, **holes: object) -> Script:
        """This script followed by more lines (a separate rendering, not an edit of this text)."""
        more = string.Template(textwrap.dedent(template).strip("\n")).substitute(
            {name: str(value) for name, value in holes.items()}
        )
        return Script.verbatim(self.text + more)

    def recorded_then(self, backward: str) -> tuple[Callable[[], Namespace], Callable[[Namespace], Namespace], Script]:
        """What an error contract with a backward phase runs: this script while recording, then
        ``backward`` on the names it defined; and the whole text as the repro."""
        return self.run, lambda seen: Script(backward).run(**seen), self.then(backward)

    def run(self, **values: Any) -> Namespace:
        """Execute the script with ``values`` predefined; return what it defined and printed.

        An exception raised by the script propagates unchanged, so an error contract can check
        the script itself.
        """
        namespace = Namespace(values, __name__="__autograd_spec_script__")
        printed = io.StringIO()
        code = compile(self.text, "<autograd-spec script>", "exec")
        with contextlib.redirect_stdout(printed):
            exec(code, namespace)  # noqa: S102 - our own rendered code
        namespace.printed = printed.getvalue()
        return namespace

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Script({self.text!r})"


def literal(tensor: Any) -> str:
    """A tensor's values as code that rebuilds it (shape and dtype kept, zero-size included)."""
    flat = tensor.detach().flatten().tolist()
    return f"torch.tensor({flat!r}, dtype={tensor.dtype}).reshape({tuple(tensor.shape)})"

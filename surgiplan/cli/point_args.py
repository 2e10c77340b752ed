"""Command-line coordinates as people type them: ``--entry -80,-10,20``, ``--entry=-80,-10,20``
and ``--entry -80 -10 20`` all mean the LPS point (-80, -10, 20) mm.

``argparse`` takes a value that starts with ``-`` and is not a plain negative number for an
option, so ``--entry -80,-10,20`` fails with "expected one argument". Before parsing, the
values of every option whose metavar is a comma list (``X,Y,Z``, ``PX,PY,PZ,NX,NY,NZ``) are
joined to their flag; space-separated numbers are joined with commas.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Sequence

_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _is_number(token: str) -> bool:
    return bool(_NUMBER.match(token))


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:  # argparse offers no public walk of sub-parsers
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from _parsers(sub)


def list_options(parser: argparse.ArgumentParser) -> dict[str, int]:
    """Every option taking one comma-list value (flag -> number of items), over sub-commands."""
    out: dict[str, int] = {}
    for p in _parsers(parser):
        for action in p._actions:
            metavar = action.metavar
            if (isinstance(metavar, str) and "," in metavar and action.nargs is None
                    and action.option_strings):
                for flag in action.option_strings:
                    out[flag] = metavar.count(",") + 1
    return out


def join_point_values(argv: Sequence[str], options: dict[str, int]) -> list[str]:
    """``argv`` with each list option's value attached as ``--flag=a,b,c``."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        count = options.get(token)
        if count is None or i + 1 >= len(argv):
            out.append(token)
            i += 1
            continue
        spaced = argv[i + 1:i + 1 + count]
        if count > 1 and len(spaced) == count and all(_is_number(t) for t in spaced):
            out.append(f"{token}={','.join(spaced)}")
            i += 1 + count
        else:
            out.append(f"{token}={argv[i + 1]}")
            i += 2
    return out

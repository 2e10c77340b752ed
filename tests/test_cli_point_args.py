"""Every point option takes the README's form (``--entry -80,-10,20``), ``--entry=...`` and
``--entry X Y Z`` (issue 13, item 7)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from surgiplan.cli.main import build_parser
from surgiplan.cli.point_args import join_point_values, list_options


@pytest.fixture(scope="module")
def parser():
    return build_parser()


def _parse(parser, argv: list[str]):
    return parser.parse_args(join_point_values(argv, list_options(parser)))


def test_every_comma_list_option_is_found(parser):
    options = list_options(parser)
    for flag in ("--entry", "--target", "--tip", "--near", "--plane"):
        assert flag in options, sorted(options)
    assert options["--entry"] == 3 and options["--plane"] == 6


@pytest.mark.parametrize("form", [
    ["--entry", "-80,-10,20", "--target", "-5,-2,10"],
    ["--entry=-80,-10,20", "--target=-5,-2,10"],
    ["--entry", "-80", "-10", "20", "--target", "-5", "-2", "10"],
])
def test_trajectory_points_in_every_form(parser, form):
    args = _parse(parser, ["simulate", "trajectory", "case.surgiplan", *form])
    assert args.entry == (-80.0, -10.0, 20.0)
    assert args.target == (-5.0, -2.0, 10.0)


@pytest.mark.parametrize("argv,attr,expected", [
    (["plan-path", "c", "--target", "-5,-2,10"], "target", (-5.0, -2.0, 10.0)),
    (["simulate", "ablation", "c", "--tip", "-1,-2,-3", "--entry", "-10", "0", "5e1",
      "--target", "tumour"], "entry", (-10.0, 0.0, 50.0)),
    (["simulate", "implant", "c", "--suggest", "L4", "--side", "left", "--near", "-10,110,-220.9"],
     "near", (-10.0, 110.0, -220.9)),
    (["simulate", "resection", "c", "--organ", "liver", "--plane", "-1,-2,-3,0,-1,0"],
     "plane", (-1.0, -2.0, -3.0, 0.0, -1.0, 0.0)),
])
def test_other_point_options(parser, argv, attr, expected):
    assert tuple(getattr(_parse(parser, argv), attr)) == pytest.approx(expected)


def test_bad_point_is_one_line_bad_input(tmp_path):
    done = subprocess.run([sys.executable, "-m", "surgiplan", "simulate", "trajectory",
                           str(tmp_path / "x.surgiplan"), "--entry", "-80,-10",
                           "--target", "0,0,0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "X,Y,Z" in done.stderr and "Traceback" not in done.stderr


def test_every_command_and_sub_command_prints_its_help():
    """``--help`` works everywhere (a bare '%' in a help text crashed `simulate --help`)."""
    from surgiplan.cli.point_args import _parsers

    parsers = list(_parsers(build_parser()))
    assert len(parsers) > 10
    for parser in parsers:
        assert parser.format_help().strip(), parser.prog

"""Lost updates: a case saved by one writer after another writer (a second app instance, or the
command line adding a plan) changed the file is refused, never silently overwritten; the other
writer's plans survive; reload, save-as and deliberate overwrite all work."""

from __future__ import annotations

import os

import pytest

from surgiplan.io.bundle import CaseChangedError, load_bundle, read_extras, save_bundle
from surgiplan.plans.store import read_plans, write_plans
from tests.reliability.savecase import small_case


def _add_plan(path, name: str) -> None:
    """What ``surgiplan plans --import-mrk`` / ``score --save`` do: rewrite the plans entries."""
    from surgiplan.plans.model import Intervention, Plan

    plans = read_plans(path)
    plans.add(Plan(name=name, interventions=[Intervention(
        label="path", kind="trajectory", simulator_id="surgiplan.trajectory",
        inputs={"entry_lps": [0.0, -9.0, 0.0], "target_lps": [0.0, 0.0, 0.0],
                "diameter_mm": 2.0})]))
    write_plans(path, plans)


def _plan_names(path) -> list[str]:
    return [p.name for p in read_plans(path).plans]


@pytest.fixture
def case(tmp_path):
    return small_case(tmp_path)


def test_second_writer_detects_the_change_and_keeps_the_others_plans(case):
    app = load_bundle(case)  # first instance opens the case
    _add_plan(case, "from the CLI")  # meanwhile the CLI adds a plan to the same file
    app.set_structure_properties("vessel", margin_mm=3.0)  # the app edits and saves
    with pytest.raises(CaseChangedError) as info:
        save_bundle(app, case)
    assert "changed on disk" in str(info.value) and "plans/" in str(info.value)
    assert "\n" not in str(info.value)
    assert _plan_names(case) == ["from the CLI"]  # nothing was dropped


def test_two_app_instances(case):
    first, second = load_bundle(case), load_bundle(case)
    first.set_structure_properties("vessel", margin_mm=4.0)
    save_bundle(first, case)
    save_bundle(first, case)  # its own earlier save is no conflict
    second.set_structure_properties("tumour", margin_mm=7.0)
    with pytest.raises(CaseChangedError):
        save_bundle(second, case)
    assert load_bundle(case).structure("vessel").margin_mm == 4.0


def test_reload_save_as_and_overwrite(case, tmp_path):
    app = load_bundle(case)
    _add_plan(case, "theirs")
    app.set_structure_properties("vessel", margin_mm=3.0)
    with pytest.raises(CaseChangedError):
        save_bundle(app, case)
    # save as: both versions kept
    mine = save_bundle(app, tmp_path / "mine.surgiplan")
    assert load_bundle(mine).structure("vessel").margin_mm == 3.0
    assert _plan_names(case) == ["theirs"]
    # reload: the other writer's plan is there, and the reloaded twin saves without conflict
    reloaded = load_bundle(case)
    reloaded.set_structure_properties("vessel", margin_mm=3.0)
    save_bundle(reloaded, case)
    assert _plan_names(case) == ["theirs"]
    # overwrite on purpose: the user's explicit choice
    save_bundle(app, case, overwrite_changes=True)
    assert "plans/plans.json" not in read_extras(case)


def test_in_place_rewrite_with_same_size_is_detected(case):
    """A writer that rewrites the file in place (same inode) changes its mtime."""
    app = load_bundle(case)
    data = case.read_bytes()
    st = case.stat()
    case.write_bytes(data)
    os.utime(case, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    with pytest.raises(CaseChangedError):
        save_bundle(app, case)


def test_cli_plan_writes_do_not_drop_each_other(case):
    _add_plan(case, "one")
    _add_plan(case, "two")
    assert _plan_names(case) == ["one", "two"]

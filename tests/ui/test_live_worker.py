"""Live scores off the GUI thread (issue 15, item 11): one score at a time, the latest waiting
request wins, and while moves outpace a slow scorer the answers still come (with a lag)
instead of only once the drag pauses; a cancelled request's answer never shows."""

from __future__ import annotations

import time

from surgiplan.ui.rehearse.live_worker import CoalescingScorer
from surgiplan.ui.widgets.jobs import JobRunner


def slow_score(position: int) -> int:
    time.sleep(0.1)  # a scorer slower than the moves
    return position


def test_answers_follow_a_fast_drag_latest_request_wins(qtbot):
    runner = JobRunner()
    scorer = CoalescingScorer(runner, "live test")
    shown, errors = [], []
    for position in range(5):  # five moves while the first is scored
        scorer.request(lambda p=position: slow_score(p), shown.append, errors.append)
    assert scorer.busy
    qtbot.waitUntil(lambda: not scorer.busy and runner.is_idle(), timeout=10_000)
    assert shown == [0, 4]  # the first (a lagging answer is shown) and the latest move
    assert scorer.skipped == 3 and not errors and scorer.last_ms >= 100.0
    scorer.request(lambda: slow_score(5), shown.append, errors.append)
    scorer.cancel()  # released: the running answer is dropped
    qtbot.waitUntil(lambda: not scorer.busy and runner.is_idle(), timeout=10_000)
    assert shown == [0, 4]
    scorer.request(lambda: slow_score(6), shown.append, errors.append)
    qtbot.waitUntil(lambda: shown[-1] == 6, timeout=10_000)

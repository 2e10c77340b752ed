"""One VTK pipeline update at a time across worker threads.

VTK's STDThread SMP backend (set in ``surgiplan/__init__.py``: 2.4x faster on 2 cores) runs each
filter on its own worker threads. Two filters updated at the same moment from two different
Python worker threads (the app meshing a whole scene while re-meshing an edited structure)
aborted the process now and then. Filters run from worker threads hold this lock while they
update; each still uses every core.
"""

from __future__ import annotations

import threading

VTK_PIPELINE_LOCK = threading.RLock()

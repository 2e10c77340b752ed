"""A plug-in whose run() never returns and ignores its cancel token."""

import time

from sp_test_plugins import spec


class HangingSimulator:
    spec = spec("test-hang")

    def run(self, context, inputs, parameters, *, uncertainty, progress=None, cancel=None):
        if progress is not None:
            progress(0.1, "about to hang")
        while True:
            time.sleep(0.05)

"""A plug-in whose run() raises, and one written for a future API version."""

from sp_test_plugins import spec


class CrashingSimulator:
    spec = spec("test-crash")

    def run(self, context, inputs, parameters, *, uncertainty, progress=None, cancel=None):
        raise RuntimeError("deliberate crash in the test plug-in")


class OldApiSimulator(CrashingSimulator):
    spec = spec("test-old-api", api_version=99)

"""A plug-in module whose import segfaults."""

import ctypes

ctypes.string_at(0)


class Never:
    pass

"""A plug-in module whose import never returns (holding the GIL)."""

import ctypes

ctypes.PyDLL(None).sleep(3600)


class Never:
    pass

"""Folder put on ``sys.path`` for the hostile plug-ins (package ``sp_hostile``)."""

from pathlib import Path

HOSTILE = Path(__file__).resolve().parent

# entry-point name -> value (entry-point names are the simulator ids)
HOSTILE_PLUGINS = {
    "hostile-segfault": "sp_hostile.crashers:Segfault",
    "hostile-gil-hang": "sp_hostile.crashers:GilHang",
    "hostile-exit": "sp_hostile.crashers:Exit",
    "hostile-sysexit": "sp_hostile.crashers:SysExit",
    "hostile-stubborn": "sp_hostile.crashers:Stubborn",
    "hostile-import-hang": "sp_hostile.import_hang:Never",
    "hostile-import-crash": "sp_hostile.import_crash:Never",
    "hostile-nan": "sp_hostile.liars:NanSafe",
    "hostile-types": "sp_hostile.liars:WrongTypes",
    "hostile-dict": "sp_hostile.liars:NotAResult",
    "hostile-huge": "sp_hostile.liars:Huge",
    "hostile-pickle": "sp_hostile.liars:PicklePayload",
    "hostile-tamper": "sp_hostile.liars:Tamper",
    "hostile-absurd-default": "sp_hostile.liars:AbsurdDefault",
}

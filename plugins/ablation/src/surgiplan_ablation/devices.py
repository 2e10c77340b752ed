"""Ablation device tables: the zone (long x short axis, centre offset from the tip) for each
power and time of a device, read from editable TOML files (see the plug-in's data/README.md).

A zone is a prolate ellipsoid around the probe axis: ``long_mm`` along the axis, ``short_mm``
across it (diameters, mm); its centre lies ``tip_offset_mm`` back from the tip along the shaft.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from surgiplan.errors import BadInputError

ENV_DIR = "SURGIPLAN_ABLATION_DEVICES"
COLUMNS = ("power_w", "time_min", "long_mm", "short_mm", "tip_offset_mm")
MODALITIES = ("microwave", "rf")


@dataclass(frozen=True)
class ZoneSize:
    """Zone diameters along (``long_mm``) and across (``short_mm``) the probe, and the distance
    from the tip back to the zone centre (``tip_offset_mm``), all mm."""

    long_mm: float
    short_mm: float
    tip_offset_mm: float


@dataclass(frozen=True)
class DeviceSetting:
    power_w: float
    time_min: float
    zone: ZoneSize


@dataclass(frozen=True)
class DeviceTable:
    """One device: identity, modality (microwave / rf), probe diameter, source, settings."""

    id: str
    title: str
    modality: str
    probe_diameter_mm: float
    source: str
    illustrative: bool
    settings: tuple[DeviceSetting, ...]
    path: Path | None = None

    def zone(self, power_w: float, time_min: float) -> ZoneSize:
        """The zone of the row with this power (W) and time (min); never interpolated."""
        for s in self.settings:
            if abs(s.power_w - power_w) < 1e-6 and abs(s.time_min - time_min) < 1e-6:
                return s.zone
        have = ", ".join(f"{s.power_w:g} W {s.time_min:g} min" for s in self.settings)
        raise BadInputError(f"device {self.id} has no setting {power_w:g} W {time_min:g} min "
                            f"(it has {have})", path=self.path,
                            action="choose a listed setting or add a row to the device table")


def device_dir() -> Path:
    """The folder of device tables: ``$SURGIPLAN_ABLATION_DEVICES`` or the plug-in's own
    package data (``surgiplan_ablation/data``)."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    return Path(str(files("surgiplan_ablation") / "data"))


_TABLES: dict[tuple[str, int, int], DeviceTable] = {}  # (path, mtime ns, size) -> table


def load_device(path: Path) -> DeviceTable:
    """Read and check one device table (``BadInputError`` naming the file on any problem);
    an unchanged file is parsed once (every live ablation score resolves its device)."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        stat = None
    key = None if stat is None else (str(path), stat.st_mtime_ns, stat.st_size)
    if key in _TABLES:
        return _TABLES[key]
    table = _read_device(path)
    if key is not None:
        _TABLES[key] = table
    return table


def _read_device(path: Path) -> DeviceTable:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadInputError(f"cannot read the device table: {exc}", path=path,
                            action="fix the TOML syntax") from exc
    try:
        return _parse(data, path)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"invalid device table: {exc}", path=path,
                            action="see the README.md beside the shipped tables for the format"
                            ) from exc


def _parse(data: dict, path: Path) -> DeviceTable:
    if tuple(data["columns"]) != COLUMNS:
        raise ValueError(f"columns must be {list(COLUMNS)}")
    if data["modality"] not in MODALITIES:
        raise ValueError(f"modality must be one of {list(MODALITIES)}")
    if not str(data.get("source", "")).strip():
        raise ValueError("the source of the numbers must be stated")
    settings = []
    for row in data["rows"]:
        power, time, long_mm, short_mm, offset = (float(v) for v in row)
        if min(power, time, long_mm, short_mm) <= 0 or not 0 <= offset < long_mm:
            raise ValueError(f"row {row}: sizes, power and time must be > 0 and "
                             "0 <= tip_offset_mm < long_mm")
        settings.append(DeviceSetting(power, time, ZoneSize(long_mm, short_mm, offset)))
    if not settings:
        raise ValueError("no rows")
    return DeviceTable(id=str(data["id"]), title=str(data["title"]),
                       modality=str(data["modality"]),
                       probe_diameter_mm=float(data["probe_diameter_mm"]),
                       source=" ".join(str(data["source"]).split()),
                       illustrative=bool(data["illustrative"]), settings=tuple(settings),
                       path=path)


def load_devices(directory: Path | None = None) -> dict[str, DeviceTable]:
    """Every ``*.toml`` table in ``directory`` (default :func:`device_dir`), by id."""
    directory = device_dir() if directory is None else Path(directory)
    tables = [load_device(p) for p in sorted(directory.glob("*.toml"))]
    return {t.id: t for t in tables}


def get_device(device_id: str, directory: Path | None = None) -> DeviceTable:
    devices = load_devices(directory)
    if device_id not in devices:
        raise BadInputError(f"no ablation device {device_id!r} (have "
                            f"{', '.join(sorted(devices)) or 'none'})",
                            path=directory or device_dir(),
                            action="use --device with a listed id or add a device table")
    return devices[device_id]

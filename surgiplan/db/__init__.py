"""The local DICOM database (Qt-free): an SQLite index of the patients, studies, series and
instance files imported or retrieved, like 3D Slicer's DICOM database."""

from surgiplan.db.database import LocalDatabase, default_folder

__all__ = ["LocalDatabase", "default_folder"]

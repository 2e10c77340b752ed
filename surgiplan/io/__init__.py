"""Reading and writing patient data (DICOM import/export and friends).

Import-light on purpose: submodules pull in pydicom/numpy only when used, e.g.
``from surgiplan.io.dicom_load import load_dicom`` or
``from surgiplan.io.dicom_write import write_series``.
"""

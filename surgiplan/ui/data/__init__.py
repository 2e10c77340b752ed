"""Getting data in: the data panel, the local DICOM database browser, the PACS query/retrieve panel
and the worker functions that open cases and scans."""

"""DICOM networking (Qt-free): server settings, DIMSE through pynetdicom, DICOMweb through
dicomweb-client, retrieval into the importer and the local database, and sending results back.

Nothing here opens a connection unless the user configured a server (:mod:`.settings`).
"""

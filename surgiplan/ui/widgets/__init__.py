"""Building blocks shared by every room: schema-built parameter forms, background jobs, dock set-up
and the PySide6 work-around."""

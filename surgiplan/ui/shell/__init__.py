"""The app shell: start-up, the main window and its layouts, settings, background jobs, saving,
autosave and error dialogs."""

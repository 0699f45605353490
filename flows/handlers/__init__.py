"""Use cases: one function per command, one for a batch of the daily close, one for the import. No Prefect here."""

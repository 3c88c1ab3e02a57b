"""Model definitions of the project zoo (one file per family; no imports here on purpose)."""

"""Audits: a plan (models x methods x metrics) over a whole dataset, every result written as it is produced so
that a killed audit resumes where it stopped. ``dataset`` reads folders and manifests, ``store`` keeps the
results (SQLite: one transaction per result, so a kill loses at most the one in flight), ``engine`` runs the
plan in-process."""

"""The background worker: RQ jobs (``worker.jobs``) and the process that runs them (``worker.main``)."""

"""Durable work: batch signing under a lease that a dead process stops renewing
(``batch_runs``), and the job queue that runs work on worker machines (docs/jobs.md)."""

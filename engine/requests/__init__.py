"""Letter requests: workflow definitions (YAML), the catalog in force, the state machine, the
requests themselves, the queues per role and batch signing."""

"""The `imagine` command: settings, embedded services and the process runner."""

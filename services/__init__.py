"""Application services: one implementation of each operation, called by the HTTP API, the CLI and the simulator."""

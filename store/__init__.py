"""Storage: the engine, the tables and their migrations, the queries, and the sandbox gateway's ledger."""

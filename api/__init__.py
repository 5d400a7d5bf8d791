"""The HTTP API (SPEC I1-I6): validates, authorizes, then calls the application services."""

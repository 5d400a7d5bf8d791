"""Workflows: the long-running billing flows; orchestration and state machines only."""

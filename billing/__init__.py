"""Pure billing domain: money, tax, credits, invoices and input validation (no Temporal imports)."""

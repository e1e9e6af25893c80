"""Long jobs (planning a large instance, simulations, the audit-chain walk) on a database-backed queue."""

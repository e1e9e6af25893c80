"""The one audit mechanism: append-only, hash-chained entries written in the same transaction."""

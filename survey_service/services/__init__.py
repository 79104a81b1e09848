"""Domain operations: they own the transactions and enqueue only after commit."""

"""Kind of change: a user's direct license (users-to-SKU rows)."""

"""What the `b2c jobs` commands do behind their options: the GraphQL they send, live views, rendering."""

"""What the `b2c monitor` commands do behind their options: the GraphQL they send and rendering."""

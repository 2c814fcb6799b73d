"""b2c: the B2X command line — monitoring commands over the gateway's GraphQL API, and `b2c up`."""

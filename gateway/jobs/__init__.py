"""GraphQL for scheduler jobs: queries, mutations, subscriptions."""

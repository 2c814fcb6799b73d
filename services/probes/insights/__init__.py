"""The read side: what the agents stored, as check states, patterns, histories, resources and exports."""

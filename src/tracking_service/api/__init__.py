"""HTTP routers: one per user of the service."""

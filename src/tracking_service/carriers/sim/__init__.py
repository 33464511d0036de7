"""The simulated carrier: number format, pure timeline and its small HTTP app."""

"""Analytics for clinic directors: counters kept by event handlers, per clinic, doctor and local day."""

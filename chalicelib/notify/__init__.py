"""Notifications: devices, templates, push and SMS channels, the in-app inbox, and the jobs."""

"""Routers split by role; thin: they validate, call a service and shape the answer."""

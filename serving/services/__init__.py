"""Service layer: what routes and the pipeline call. Each function takes a Session.

Functions that change state commit their own transaction (one transaction per decision), so a
crash leaves either nothing or everything of it.
"""

"""Renderers: a person's profile and activity, written in one source's own record shapes."""

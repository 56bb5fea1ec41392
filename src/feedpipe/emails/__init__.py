"""Emails: render an edition once (Jinja2 + CSS inlining), then personalise it per recipient."""

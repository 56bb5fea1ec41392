"""Emails: render an edition once (Jinja2 + premailer), then personalise it cheaply per recipient."""

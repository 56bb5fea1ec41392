"""Subscriptions: the one owner of a subscriber's life (status changes, links, fields)."""

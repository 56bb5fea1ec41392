"""Feeds: choose which feeds exist, render them (RSS, Atom, JSON Feed, OPML), write them."""

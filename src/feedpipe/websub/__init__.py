"""WebSub (W3C): publish notifications to hubs after a build, and the hub `feedpipe serve` runs."""

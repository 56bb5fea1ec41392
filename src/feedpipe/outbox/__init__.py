"""The durable outbox: editions and one row per message, filled before sending, then dispatched."""

"""The webhook receiver (`optout-desk receive`): the Starlette app, the payload parsers,
the event store (a child process that commits the deliveries), the group-commit writer of
the receiver's own writes, and the uvicorn runner."""

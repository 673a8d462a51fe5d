"""The webhook receiver (`optout-desk receive`): the Starlette app, the payload parsers,
the group-commit writer and the uvicorn runner."""

"""One module per CLI sub-command. Each exposes `register(subparsers)`, which adds its parser and
sets `handler=` to a function taking the parsed arguments and returning an exit code. Heavy
imports stay inside the handlers so `optout-desk --help` starts fast."""

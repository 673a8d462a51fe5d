"""`optout-desk receive`: the webhook receiver in the foreground, until SIGTERM or Ctrl+C."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "receive",
        help="receive webhooks (CheckMarket, LOX24) into the inbox, in the foreground",
        description="Receive webhooks into the inbox until Ctrl+C or SIGTERM. Each event is "
        "stored before it is acknowledged. Listens on 127.0.0.1 unless told otherwise; a "
        "public deployment belongs behind HTTPS (a reverse proxy, or --ssl-certfile and "
        "--ssl-keyfile).",
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this computer only)")
    parser.add_argument("--port", type=int, default=8787, help="port (default 8787; 0: any)")
    parser.add_argument("--public-url", metavar="URL",
                        help="the address the platforms post to (e.g. your reverse proxy's "
                        "https URL); remembered, and used by `inbox add` for the hook URLs")
    parser.add_argument("--ssl-certfile", metavar="FILE", help="serve HTTPS with this "
                        "certificate (PEM)")
    parser.add_argument("--ssl-keyfile", metavar="FILE", help="the certificate's key (PEM)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from optout_desk.core.errors import BadInputError
    from optout_desk.webhooks.runner import Receiver, ReceiverOptions
    from optout_desk.workflows import inbox

    if not 0 <= args.port <= 65535:
        raise BadInputError("--port must be from 0 to 65535.")
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        raise BadInputError("HTTPS needs both --ssl-certfile and --ssl-keyfile.")
    if args.public_url:
        inbox.set_public_base_url(args.public_url)
    options = ReceiverOptions(host=args.host, port=args.port, public_url=args.public_url,
                              ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)
    receiver = Receiver(options)
    sources = inbox.list_sources()
    names = ", ".join(s.name for s in sources) or "none yet: add one with `optout-desk inbox add`"
    # Binds the port first (a clear error when it is taken), then announces, then serves.
    try:
        receiver.serve(on_listening=_Announcer(receiver, options, names))
    except KeyboardInterrupt:  # a second Ctrl+C while shutting down
        pass
    print("Receiver stopped.", flush=True)
    return 0


class _Announcer:
    def __init__(self, receiver: Any, options: Any, names: str) -> None:
        self.receiver, self.options, self.names = receiver, options, names

    def __call__(self) -> None:
        receiver, options = self.receiver, self.options
        print(f"Receiving webhooks on {receiver.local_url} (sources: {self.names})", flush=True)
        print(f"Hook URLs: {receiver.base_url}/hooks/<token> — `optout-desk inbox sources` "
              "shows each source's URL.", flush=True)
        if not options.loopback_only and not options.ssl_certfile:
            print("Warning: this address is reachable from other computers over plain HTTP. "
                  "A public receiver belongs behind HTTPS: a reverse proxy (see the README) "
                  "or --ssl-certfile/--ssl-keyfile.", flush=True)
        print("Press Ctrl+C to stop.", flush=True)

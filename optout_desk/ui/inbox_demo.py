"""Demo mode's inbox: a local receiver, two webhook sources, and a trickle of events, all over
the same HTTP paths real platforms use.

- `demo-lox24`: a LOX24 source; two weeks of phone.unsubscribe events (a few phone.subscribe
  among them) are delivered at start, then one more every few seconds.
- `demo-checkmarket`: a CheckMarket source registered on the first demo sandbox (POST 3/hooks,
  the Webhook.Created handshake, activation); now and then a new opt-out on the sandbox
  arrives as Panelist.Optout.

Tokens are held for the session only, like the demo keys. Everything stops with the demo.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from optout_desk.ui import receiver_control

log = logging.getLogger(__name__)

LOX24_SOURCE = "demo-lox24"
CHECKMARKET_SOURCE = "demo-checkmarket"
BACKLOG = 80
TRICKLE_S = (3.0, 7.0)  # seconds between two events, at random in this range


@dataclass
class InboxDemo:
    receiver: Any
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(10)
        receiver_control.stop()


def start_inbox_demo(sandbox: Any, connection: str) -> InboxDemo:
    """Start it (worker thread); `sandbox` and `connection` are the first demo sandbox's."""
    from optout_desk.sandbox.lox24 import Lox24Sender, generate_events
    from optout_desk.workflows import inbox

    receiver = receiver_control.start(port=0)
    demo = InboxDemo(receiver)
    known = {s.name for s in inbox.list_sources()}
    for name in (LOX24_SOURCE, CHECKMARKET_SOURCE):
        if name in known:  # a named data folder from an earlier demo: tokens were session-only
            inbox.remove_source(name)
    _s, token = inbox.add_source(LOX24_SOURCE, "lox24", session_only=True)
    url = inbox.hook_url(token, receiver.base_url)
    inbox.add_source(CHECKMARKET_SOURCE, "checkmarket", connection=connection,
                     session_only=True)
    try:
        inbox.register_hook(CHECKMARKET_SOURCE, connection, receiver.base_url)
    except Exception:  # the LOX24 half still makes the page alive
        log.warning("the demo CheckMarket webhook could not be registered", exc_info=True)
    sender = Lox24Sender(url, retry_delays_s=(0.2, 0.5, 1.0))
    for event in generate_events(BACKLOG, seed=11):
        sender.deliver(event)

    def trickle() -> None:
        rng = random.Random(12)
        number = 0
        try:
            while not demo.stop_event.wait(rng.uniform(*TRICKLE_S)):
                number += 1
                if number % 4 == 0:
                    sandbox.state.add_optouts(1)  # arrives as Panelist.Optout
                    continue
                now = int(time.time())
                sender.deliver(generate_events(1, seed=1000 + number, start=now, end=now,
                                               resubscribe_share=0.0)[0])
        finally:
            sender.close()

    demo.thread = threading.Thread(target=trickle, name="demo-inbox", daemon=True)
    demo.thread.start()
    log.info("demo inbox: receiver on %s, %d events delivered", receiver.base_url, BACKLOG)
    return demo

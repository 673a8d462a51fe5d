"""The webhook receiver inside the desktop process ("Receive webhooks on this computer", and
demo mode): one at a time, started and stopped from worker threads (binding and starting take
a moment; stopping waits for the answers in flight)."""

from __future__ import annotations

import threading

from optout_desk.webhooks.runner import DEFAULT_PORT, Receiver, ReceiverOptions

_lock = threading.Lock()
_receiver: Receiver | None = None


def current() -> Receiver | None:
    with _lock:
        return _receiver if _receiver is not None and _receiver.running else None


def start(port: int = DEFAULT_PORT) -> Receiver:
    """Start the local receiver on 127.0.0.1 (or return the one running). Worker thread."""
    global _receiver
    with _lock:
        if _receiver is not None and _receiver.running:
            return _receiver
        _receiver = Receiver(ReceiverOptions(port=port)).start()
        return _receiver


def stop() -> None:
    """Stop the local receiver, if one runs. Worker thread (or at quit)."""
    global _receiver
    with _lock:
        receiver, _receiver = _receiver, None
    if receiver is not None:
        receiver.stop()

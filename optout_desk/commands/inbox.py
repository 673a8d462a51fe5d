"""`optout-desk inbox …`: webhook sources, the CheckMarket handshake, the received entries,
forwarding them to destinations, pulling from a relay, the relay's pull API token."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from optout_desk.core.wording import counted


def _webhook_systems() -> list[str]:
    """The systems that push webhooks, as the connector registry declares."""
    from optout_desk.connectors.base import Capability
    from optout_desk.connectors.registry import systems_that

    return [info.id for info in systems_that(Capability.RECEIVE)]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "inbox", help="webhook sources and the opt-outs they pushed",
        description="Manage webhook sources (each has its own secret URL), see and export what "
        "arrived, and forward new opt-outs to a destination.")
    parser.set_defaults(handler=_usage)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    add = actions.add_parser(
        "add", help="add a webhook source and print its URL",
        description="Add a webhook source. Its URL (/hooks/<token> under the receiver's base "
        "URL) is printed on the last line; the token is kept in the OS keyring.")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--system", required=True, choices=_webhook_systems())
    add.add_argument("--connection", metavar="CM_CONN",
                     help="CheckMarket: the connection that activates the webhook")
    add.add_argument("--url", metavar="BASE_URL", help="the receiver's public base URL "
                     "(default: the one `receive --public-url` remembered, else "
                     "http://127.0.0.1:8787)")
    add.add_argument("--no-keyring", action="store_true",
                     help="do not keep the token (no keyring on this host): the URL is shown "
                     "this once only")
    add.set_defaults(handler=run_add)

    reg = actions.add_parser(
        "register", help="create the CheckMarket webhook of a source",
        description="Create the CheckMarket Panelist.Optout webhook (POST 3/hooks) pointing at "
        "the source's URL under PUBLIC_URL. The receiver must be running there: it answers "
        "CheckMarket's Webhook.Created handshake and activates the webhook.")
    reg.add_argument("name", metavar="NAME", help="the source (created when missing)")
    reg.add_argument("--connection", required=True, metavar="CM_CONN")
    reg.add_argument("--url", required=True, metavar="PUBLIC_URL",
                     help="the receiver's base URL as CheckMarket reaches it")
    reg.add_argument("--survey", type=int, metavar="ID", help="only this survey's opt-outs")
    reg.add_argument("--wait", type=float, default=20.0, metavar="S",
                     help="seconds to wait for the activation (default 20)")
    reg.set_defaults(handler=run_register)

    act = actions.add_parser(
        "activate", help="activate a CheckMarket webhook whose activation failed",
        description="Activate the source's webhook with the hook key kept from its handshake.")
    act.add_argument("name", metavar="NAME")
    act.add_argument("--connection", metavar="CM_CONN")
    act.set_defaults(handler=run_activate)

    sources = actions.add_parser("sources", help="list the webhook sources and their URLs")
    sources.set_defaults(handler=run_sources)

    listing = actions.add_parser(
        "list", help="list or export the received entries",
        description="List the inbox's entries, or write them to a file (.csv, .xlsx, or .jsonl "
        "with one object per event).")
    listing.add_argument("--source", metavar="NAME")
    listing.add_argument("--output", type=Path, metavar="FILE")
    listing.set_defaults(handler=run_list)

    remove = actions.add_parser(
        "remove", help="remove a webhook source (its URL stops working; entries stay)")
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(handler=run_remove)

    forward = actions.add_parser(
        "forward", help="submit the new opt-outs to a destination",
        description="Submit the inbox's opt-outs not yet forwarded to CONN, previewed, "
        "journaled and receipted like `submit`; each entry is then marked forwarded there. "
        "Resubscribes are never forwarded.")
    forward.add_argument("--to", required=True, metavar="CONN", dest="destination")
    forward.add_argument("--source", metavar="NAME")
    forward.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    forward.add_argument("--receipt", type=Path, metavar="FILE")
    forward.set_defaults(handler=run_forward)

    pull = actions.add_parser(
        "pull", help="fetch what a relay received since the last pull",
        description="Fetch the events a relay (a connection of system inbox-relay) received "
        "since the last pull into this inbox.")
    pull.add_argument("connection", metavar="RELAY_CONN")
    pull.set_defaults(handler=run_pull)

    token = actions.add_parser(
        "api-token", help="make a new bearer token for this receiver's pull API",
        description="Make a new token for GET /api/v1/events (the old one stops working). "
        "Only its hash is kept: copy it into the desktop's inbox-relay connection.")
    token.set_defaults(handler=run_api_token)


def _usage(_args: argparse.Namespace) -> int:
    from optout_desk.core.errors import BadInputError

    raise BadInputError("Say what to do: `optout-desk inbox add|register|activate|sources|"
                        "list|remove|forward|pull|api-token` (`--help` explains each).")


def run_add(args: argparse.Namespace) -> int:
    from optout_desk.commands._terminal import err, out
    from optout_desk.workflows import inbox

    if args.connection and args.system != "checkmarket":
        from optout_desk.core.errors import BadInputError

        raise BadInputError("--connection is for CheckMarket sources.")
    source, token = inbox.add_source(args.name, args.system, connection=args.connection,
                                     keep_token=not args.no_keyring)
    out.print(f"Added the {source.system} source {source.name!r}. Paste this URL into the "
              "platform's webhook settings (it is the source's secret: share it like a key).")
    if args.no_keyring:
        err.print("The token is not kept: this is the only time the URL is shown.")
    if source.system == "checkmarket":
        out.print("For CheckMarket, `optout-desk inbox register` creates the webhook for you.")
    print(inbox.hook_url(token, args.url), flush=True)
    return 0


def run_register(args: argparse.Namespace) -> int:
    from optout_desk.commands._terminal import err, out
    from optout_desk.store.inbox import HOOK_ACTIVE
    from optout_desk.workflows import inbox

    done = inbox.register_hook(args.name, args.connection, args.url, survey_id=args.survey)
    out.print(f"Created CheckMarket webhook {done.webhook.webhook_id} for {args.name!r} "
              f"({'survey ' + str(args.survey) if args.survey else 'all surveys'}); waiting "
              "for its Webhook.Created handshake…")
    source = inbox.wait_for_activation(args.name, args.wait)
    if source.hook_state == HOOK_ACTIVE:
        out.print(f"The webhook is active: {source.hook_message}")
        return 0
    state = source.hook_state or "no handshake"
    err.print(f"optout-desk: the webhook is not active yet ({state}): {source.hook_message} "
              f"Check that the receiver is running at {args.url}.")
    return 1


def run_activate(args: argparse.Namespace) -> int:
    from optout_desk.commands._terminal import out
    from optout_desk.workflows import inbox

    source = inbox.activate_source(args.name, args.connection)
    out.print(f"The webhook of {source.name!r} is active: {source.hook_message}")
    return 0


def run_sources(_args: argparse.Namespace) -> int:
    from optout_desk.commands._terminal import out
    from optout_desk.core.errors import DeskError
    from optout_desk.workflows import inbox

    sources = inbox.list_sources()
    if not sources:
        out.print("No webhook sources yet. Add one with `optout-desk inbox add NAME "
                  "--system lox24`.")
        return 0
    for source in sources:
        try:
            url = inbox.source_url(source.name)
        except DeskError as exc:
            url = f"(not available: {exc.message})"
        hook = ""
        if source.system == "checkmarket":
            hook = (f" · webhook {source.webhook_id or '-'} {source.hook_state or 'not registered'}"
                    + (f" via {source.connection}" if source.connection else ""))
        last = (source.last_event_at or "never")[:19].replace("T", " ")
        print(f"{source.name}\t{source.system}{hook}\tlast event {last}\t{url}", flush=True)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from optout_desk.commands._terminal import out
    from optout_desk.workflows import inbox

    if args.output is not None:
        written = inbox.export_entries(args.output, args.source)
        out.print(f"Wrote {written:,} entr{'y' if written == 1 else 'ies'} to {args.output}")
        return 0
    entries, optout_ids = inbox.load_entries(args.source)
    optouts = sum(e.event.kind == "optout" for e in entries)
    for entry in entries:
        e = entry.event
        reason = f"{e.reason_id} {e.reason_label}".strip() if e.reason_id else e.reason_label
        print("\t".join(str(v) for v in (
            entry.received_at[:19].replace("T", " "), e.source, e.kind, e.identifier,
            reason, e.campaign, entry.deliveries, inbox.status_of(entry, optout_ids))))
    out.print(f"{counted(len(entries), 'entry', 'entries')}: {counted(optouts, 'opt-out')}, "
              f"{counted(len(entries) - optouts, 'resubscribe')}.")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from optout_desk.commands._terminal import confirm, out, stdin_is_terminal
    from optout_desk.core.errors import BadInputError
    from optout_desk.workflows import inbox

    source = inbox.get_source(args.name)
    if not args.yes:
        if not stdin_is_terminal():
            raise BadInputError(f"Removing {args.name!r} needs a confirmation: add --yes when "
                                "there is no terminal.")
        if not confirm(f"Remove the source {args.name!r}? Its URL stops working."):
            out.print("Nothing was removed.")
            return 0
    inbox.remove_source(args.name)
    extra = (" Delete the webhook in CheckMarket too, or it keeps posting to a dead URL."
             if source.system == "checkmarket" and source.webhook_id else "")
    out.print(f"Removed the source {args.name!r}; its entries stay in the inbox.{extra}")
    return 0


def run_forward(args: argparse.Namespace) -> int:
    from optout_desk.commands._terminal import confirm, err, out, progress_bar, stdin_is_terminal
    from optout_desk.commands.submit import print_preview
    from optout_desk.core.errors import BadInputError
    from optout_desk.workflows import inbox

    def approve(plan: Any) -> bool:
        print_preview(plan)
        if args.yes:
            return True
        if not stdin_is_terminal():
            raise BadInputError("Refusing to forward without confirmation: there is no "
                                "terminal to ask on. Run again with --yes.")
        return confirm(f"Submit {counted(plan.total, 'opt-out')} to {plan.destination.label}?")

    with progress_bar(f"Forwarding to {args.destination}") as report:
        result = inbox.forward_entries(args.destination, source=args.source, confirm=approve,
                                       progress=report, receipt=args.receipt)
    if result.candidates == 0:
        out.print(f"Nothing to forward: every opt-out in the inbox is on {args.destination} "
                  "already (or there is none).")
        return 0
    if result.submitted is None:
        if result.plan is not None and not result.plan.batches:
            out.print(f"{args.destination} already has all {result.candidates:,}; "
                      f"{result.marked:,} entries marked forwarded.")
            return 0
        out.print("Not forwarded; nothing was sent.")
        return 0
    for line in result.submitted.summary_lines():
        (err if result.submitted.error else out).print(line)
    out.print(f"{result.marked:,} of {result.candidates:,} entries marked forwarded to "
              f"{args.destination}.")
    return 0 if result.submitted.status == "completed" else 1


def run_pull(args: argparse.Namespace) -> int:
    from optout_desk.commands._terminal import out, progress_bar
    from optout_desk.workflows import inbox

    with progress_bar(f"Pulling {args.connection}") as report:
        result = inbox.pull_relay(args.connection, progress=report)
    if result.restarted is not None:
        out.print(f"The relay {result.connection} was pulled again from the start: "
                  f"{result.restarted}. Entries already in the inbox are not counted twice.")
    out.print(f"{result.connection}: {counted(result.fetched, 'event')} fetched, "
              f"{result.new:,} new "
              f"(cursor {result.cursor}).")
    return 0


def run_api_token(_args: argparse.Namespace) -> int:
    from optout_desk.commands._terminal import out
    from optout_desk.workflows import inbox

    token = inbox.new_api_token()
    out.print("A new pull API token (only its hash is kept; any older one stops working). "
              "On the desktop: `optout-desk connection add NAME --system inbox-relay "
              "--base-url URL`, and enter this as its token:")
    print(token, flush=True)
    return 0

"""`optout-desk connection add|list|test|remove`: manage platform connections.

Keys for `add`: when OPTOUT_DESK_SECRET_<NAME>_MASTER_KEY and _KEY are set they are used and
stay there: the connection reads them from the environment on every run, and nothing is copied
into the keyring unless --store-keys asks for it (a script's keys should not silently outlive
the script). Otherwise, in a terminal, they are typed at a hidden prompt and saved in the OS
keyring; without a terminal the command stops (exit 2) naming the variables to set.
"""

from __future__ import annotations

import argparse
import getpass
import os
from typing import Any

from optout_desk.connectors import checkmarket, registry


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "connection",
        help="add, list, test or remove platform connections",
        description="Manage platform connections. Keys are kept in the OS keyring (or in "
        "OPTOUT_DESK_SECRET_<NAME>_MASTER_KEY / _KEY environment variables), never in a file.",
    )
    parser.set_defaults(handler=lambda args: _usage(parser))
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    add = actions.add_parser(
        "add",
        help="add a connection",
        description="Add a connection. When OPTOUT_DESK_SECRET_<NAME>_MASTER_KEY and _KEY "
        "are set, the keys are read from them on every run and not copied into the keyring "
        "(unless --store-keys). Otherwise, in a terminal, you are asked for the keys (hidden) "
        "and they are saved in the OS keyring.",
    )
    add.add_argument("name", metavar="NAME", help="a name of your choice, e.g. 'acme-eu'")
    add.add_argument("--system", default="checkmarket", choices=sorted(registry.SYSTEMS),
                     help="the platform (default: checkmarket; inbox-relay: a receiver's "
                     "pull API, with --base-url)")
    where = add.add_mutually_exclusive_group(required=True)
    where.add_argument("--region", choices=sorted(checkmarket.REGIONS),
                       help="the platform's data centre")
    where.add_argument("--base-url", metavar="URL",
                       help="a custom API address (https; http only to this computer)")
    add.add_argument("--page-size", type=int, metavar="N", help="opt-outs per page when fetching")
    add.add_argument("--batch-size", type=int, metavar="N",
                     help="identifiers per request when submitting")
    add.add_argument("--concurrency", type=int, metavar="N", help="pages fetched at once")
    add.add_argument(
        "--store-keys", action="store_true",
        help="copy the keys from the environment variables into the OS keyring (by default "
        "they stay in the environment only)",
    )
    add.set_defaults(handler=run_add)

    listing = actions.add_parser("list", help="list the connections",
                                 description="List the connections and where their keys live.")
    listing.set_defaults(handler=run_list)

    test = actions.add_parser(
        "test", help="check that a connection's keys work",
        description="Make one small request with the connection's keys and show how many "
        "opt-outs the account has. Exit code 1 when it fails.",
    )
    test.add_argument("name", metavar="NAME")
    test.set_defaults(handler=run_test)

    remove = actions.add_parser(
        "remove", help="remove a connection, its keys and its cached opt-outs",
        description="Remove a connection, its keys (keyring) and its cached opt-out list. "
        "Environment variables are yours and are left alone.",
    )
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(handler=run_remove)


def _usage(parser: argparse.ArgumentParser) -> int:
    from optout_desk.core.errors import BadInputError

    raise BadInputError(
        "Say what to do: `optout-desk connection add|list|test|remove` "
        "(`optout-desk connection --help` explains each)."
    )


def run_add(args: argparse.Namespace) -> int:
    from optout_desk import secrets
    from optout_desk.commands._terminal import err, out, stdin_is_terminal
    from optout_desk.connectors import registry
    from optout_desk.core.errors import BadInputError
    from optout_desk.workflows import connections as workflow

    settings = {
        "page_size": args.page_size,
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
    }
    # Everything but the keys is checked before anyone types a key.
    profile = workflow.prepare_profile(
        args.name, args.system, region=args.region, base_url=args.base_url, settings=settings
    )
    info = registry.system_info(args.system)
    env_names = [secrets.env_var_name(args.name, f) for f in info.secret_fields]
    from_environment = all(os.environ.get(name, "").strip() for name in env_names)
    keys: dict[str, str] = {}
    if from_environment:
        if args.store_keys:
            keys = secrets.read_secrets(args.name, info.secret_fields)
    elif stdin_is_terminal():
        _require_keyring(" and ".join(env_names))
        for secret_field, label in zip(info.secret_fields, info.secret_labels, strict=True):
            value = getpass.getpass(f"{label} for {args.name} (hidden): ").strip()
            if not value:
                raise BadInputError(f"No {label.lower()} was entered; nothing was saved.")
            keys[secret_field] = value
    else:
        missing = [f for f, name in zip(info.secret_fields, env_names, strict=True)
                   if not os.environ.get(name, "").strip()]
        raise BadInputError(workflow.missing_keys_message(args.name, args.system, missing))
    saved = workflow.add_connection(
        args.name, args.system, region=args.region, base_url=args.base_url, secrets=keys,
        settings=profile.settings,
    )
    location = workflow.secrets_location(saved)
    if from_environment and not args.store_keys:
        err.print(
            "The keys stay in the environment variables (nothing was saved in the keyring); "
            "set them for every run, or add the connection with --store-keys to keep them in "
            "the OS keyring."
        )
    out.print(
        f"Added {saved.name!r}: {info.label} at {saved.base_url} (keys: {location}). "
        f"Check it with `optout-desk connection test {saved.name}`."
    )
    return 0


def _require_keyring(env_names: str) -> None:
    """Refuse before the keys are typed when they could not be saved."""
    from optout_desk import secrets

    status = secrets.backend_status()
    if status.state == "ok":
        return
    hint = (
        f" Or set {env_names} and run the command again: the keys are then read from the "
        "environment."
    )
    if status.state == "locked":
        raise secrets.KeyringLockedError(status.message + hint)
    raise secrets.NoKeyringError(
        f"No system keyring is available to save the keys ({status.message.rstrip('.')})."
        + hint
    )


def run_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from optout_desk.commands._terminal import out
    from optout_desk.workflows import connections as workflow

    overviews = workflow.list_connections()
    if not overviews:
        out.print("No connections yet. Add one with `optout-desk connection add NAME --region eu`.")
        return 0
    titles = ("Name", "System", "Region / host", "Keys", "Last sync (UTC)", "Cached")
    rows = [
        (
            item.profile.name,
            item.profile.system,
            item.where,
            item.secrets_location,
            (item.last_synced_at or "never").replace("T", " ").rstrip("Z"),
            f"{item.cached:,}",
        )
        for item in overviews
    ]
    if not out.is_terminal:
        # For scripts: one tab-separated line per connection, nothing cut to a width.
        for row in (titles, *rows):
            print("\t".join(row))
        return 0
    table = Table(box=None, pad_edge=False, header_style="bold")
    for title in titles:
        table.add_column(title, justify="right" if title == "Cached" else "left")
    for row in rows:
        table.add_row(*row)
    out.print(table)
    return 0


def run_test(args: argparse.Namespace) -> int:
    from optout_desk.commands._terminal import err, out
    from optout_desk.workflows import connections as workflow

    check = workflow.test_connection(args.name)
    if check.ok:
        out.print(f"OK: {check.message}")
        return 0
    err.print(f"optout-desk: {check.message}")
    return 1


def run_remove(args: argparse.Namespace) -> int:
    from optout_desk.commands._terminal import confirm, out, stdin_is_terminal
    from optout_desk.core.errors import BadInputError
    from optout_desk.workflows import connections as workflow

    workflow.get_connection(args.name)  # "No connection named …" before any question
    if not args.yes:
        if not stdin_is_terminal():
            raise BadInputError(
                f"Removing {args.name!r} needs a confirmation: add --yes when there is no "
                "terminal."
            )
        if not confirm(f"Remove {args.name!r}, its keys and its cached opt-outs?"):
            out.print("Nothing was removed.")
            return 0
    cached = workflow.remove_connection(args.name)
    out.print(f"Removed {args.name!r}, its keys and its {cached:,} cached opt-outs.")
    return 0

"""`optout-desk connection add|list|test|remove`: manage platform connections.

The systems, their secrets, their regions and their settings (each a --flag) come from the
connector registry: what a system declares is what `add` offers.

Keys for `add`: when every OPTOUT_DESK_SECRET_<NAME>_<FIELD> of the system is set (for
CheckMarket _MASTER_KEY and _KEY) they are used and stay there: the connection reads them from
the environment on every run, and nothing is copied into the keyring unless --store-keys asks
for it (a script's keys should not silently outlive the script). Otherwise, in a terminal, they
are typed at a hidden prompt and saved in the OS keyring; without a terminal the command stops
(exit 2) naming the variables to set.
"""

from __future__ import annotations

import argparse
import getpass
import os
from typing import Any

from optout_desk.connectors import registry
from optout_desk.connectors.base import Setting


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "connection",
        help="add, list, test or remove platform connections",
        description="Manage platform connections. Keys are kept in the OS keyring (or in "
        "OPTOUT_DESK_SECRET_<NAME>_<FIELD> environment variables), never in a file.",
    )
    parser.set_defaults(handler=lambda args: _usage(parser))
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    add = actions.add_parser(
        "add",
        help="add a connection",
        description="Add a connection. When the system's OPTOUT_DESK_SECRET_<NAME>_<FIELD> "
        "variables are set (" + "; ".join(
            f"{info.id}: " + ", ".join(info.secret_fields)
            for info in registry.connectable()) + "), the keys are read from them on every "
        "run and not copied into the keyring (unless --store-keys). Otherwise, in a terminal, "
        "you are asked for the keys (hidden) and they are saved in the OS keyring.",
    )
    add.add_argument("name", metavar="NAME", help="a name of your choice, e.g. 'acme-eu'")
    systems = sorted(registry.connectable(), key=lambda info: info.id)
    add.add_argument("--system", default="checkmarket", choices=[info.id for info in systems],
                     help="the platform (default: checkmarket): "
                     + "; ".join(f"{info.id} = {info.label}" for info in systems))
    where = add.add_mutually_exclusive_group()
    regions = sorted({r for info in registry.SYSTEMS.values() for r in info.regions
                      if r != registry.CUSTOM_REGION})
    where.add_argument("--region", metavar="REGION",
                       help="the platform's data centre (" + ", ".join(regions) + "; default: "
                       "the system's own)")
    where.add_argument("--base-url", metavar="URL",
                       help="a custom API address (https; http only to this computer)")
    for spec in _all_settings():
        users = ", ".join(info.id for info in registry.SYSTEMS.values()
                          if info.setting(spec.name) is not None)
        add.add_argument(spec.flag, dest=f"setting_{spec.name}", metavar=_metavar(spec),
                         help=f"{spec.help or spec.label} ({users})")
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


def _all_settings() -> list[Setting]:
    """Every setting any system declares, once per name, in declaration order."""
    seen: dict[str, Setting] = {}
    for info in registry.SYSTEMS.values():
        for spec in info.settings:
            seen.setdefault(spec.name, spec)
    return list(seen.values())


def _metavar(spec: Setting) -> str:
    if spec.kind is int:
        return "N"
    if spec.kind is float:
        return "X"
    if spec.kind is bool:
        return "yes|no"
    return "|".join(spec.choices) if spec.choices else "TEXT"


def chosen_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings flags given, refused when the system does not declare them."""
    from optout_desk.core.errors import BadInputError

    info = registry.system_info(args.system)
    chosen: dict[str, Any] = {}
    for spec in _all_settings():
        value = getattr(args, f"setting_{spec.name}", None)
        if value is None:
            continue
        if info.setting(spec.name) is None:
            raise BadInputError(f"{spec.flag} is not a setting of {info.label}.")
        chosen[spec.name] = value
    missing = [spec.flag for spec in info.settings if spec.required and spec.name not in chosen]
    if missing:
        raise BadInputError(f"{info.label} needs {' and '.join(missing)}.")
    return chosen


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

    info = registry.system_info(args.system)
    settings = chosen_settings(args)
    region = args.region or (None if args.base_url else info.default_region or None)
    # Everything but the keys is checked before anyone types a key.
    profile = workflow.prepare_profile(
        args.name, args.system, region=region, base_url=args.base_url, settings=settings
    )
    env_names = [secrets.env_var_name(args.name, f) for f in info.secret_fields]
    from_environment = all(os.environ.get(name, "").strip() for name in env_names)
    keys: dict[str, str] = {}
    if from_environment:
        if args.store_keys:
            keys = secrets.read_secrets(args.name, info.secret_fields)
    elif stdin_is_terminal():
        _require_keyring(" and ".join(env_names))
        for secret in info.secrets:
            secret_field, label = secret.name, secret.label
            value = getpass.getpass(f"{label} for {args.name} (hidden): ").strip()
            if not value:
                raise BadInputError(f"No {label.lower()} was entered; nothing was saved.")
            keys[secret_field] = value
    else:
        missing = [f for f, name in zip(info.secret_fields, env_names, strict=True)
                   if not os.environ.get(name, "").strip()]
        raise BadInputError(workflow.missing_keys_message(args.name, args.system, missing))
    saved = workflow.add_connection(
        args.name, args.system, region=region, base_url=args.base_url, secrets=keys,
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
        f"Added {saved.name!r}: {info.label} at {saved.base_url} (keys: {location}); it can "
        f"{info.abilities()}. Check it with `optout-desk connection test {saved.name}`."
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

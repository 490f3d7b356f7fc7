"""``kernel plugins list``: what is installed, what each plugin provides, and whether it loaded."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from kernel import console
from kernel.cli.root import CliState, app_option
from kernel.plugins import PluginInfo


def describe_provides(info: PluginInfo) -> str:
    """``transport: sqlite (sqlite); result store: sqlite`` — kinds in the order declared."""
    return "; ".join(f"{kind}: {', '.join(names)}" for kind, names in info.provides.items())


def describe_status(info: PluginInfo) -> str:
    if info.status == "failed":
        return f"[red]failed: {escape(info.error or 'unknown error')}[/]"
    if info.status == "disabled":
        return "[yellow]disabled[/]"
    return f"[green]{escape(info.status)}[/]"


@click.group()
def plugins() -> None:
    """Inspect installed plugins."""


@plugins.command("list")
@app_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.pass_obj
def list_plugins(state: CliState, as_json: bool) -> None:
    """List every plugin: distribution, version, capabilities, status (ok / failed / disabled).

    Needs no app and no broker; with -A it lists that app's plugins, including the ones it
    registers itself.
    """
    infos = state.plugin_manager().infos()
    if as_json:
        click.echo(console.to_json([info.as_dict() for info in infos], indent=2))
        return
    table = Table("plugin", "distribution", "version", "provides", "status")
    for info in infos:
        table.add_row(escape(info.name), escape(info.distribution or "-"),
                      escape(info.version or "-"), escape(describe_provides(info)),
                      describe_status(info))
    console.stdout().print(table)


@plugins.command("new")
@click.argument("name")
@click.option("--provides", "kind", required=True, metavar="KIND",
              type=click.Choice(["result-store", "transport", "pool", "serializer",
                                 "compressor", "signer", "schedule-store"]),
              help="What the plugin provides.")
@click.option("--path", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write it (default: ./kernel-NAME).")
def new_plugin(name: str, kind: str, path: Path | None) -> None:
    """Write a new plugin distribution NAME providing KIND: pyproject, README, a light entry
    module, a small working implementation and its tests (kernel's conformance suite). It
    installs as it is (pip install -e DIR) and passes its tests; then make it yours."""
    from kernel.scaffold import write_distribution

    target = path or Path(f"kernel-{name}")
    written = write_distribution(name, kind, target)
    out = console.stdout()
    out.print(f"wrote {len(written)} files to {escape(str(target))}:")
    for file in written:
        out.print(f"  {escape(str(file.relative_to(target)))}")
    out.print(escape(f"next: pip install -e '{target}[test]' && (cd {target} && pytest)"),
              soft_wrap=True)

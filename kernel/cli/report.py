"""``kernel report``: what a bug report needs, and the effective configuration with where each
value came from (default, env KERNEL_..., object ..., App(), app.conf.update, command line),
secrets masked; as Celery's ``celery report``."""

from __future__ import annotations

import json
import platform
from typing import Any

import click

import kernel
from kernel.cli.root import CliState, app_option
from kernel.config import Config
from kernel.parsing import mask_setting


@click.command()
@app_option
@click.option("--all", "show_all", is_flag=True, help="Every setting, defaults included.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for machines.")
@click.pass_obj
def report(state: CliState, show_all: bool, as_json: bool) -> None:
    """Print the versions, the plugins and the effective settings with their sources."""
    app = state.app()
    conf = app.conf
    secrets = {name for name, spec in app.plugins.settings.items() if spec.secret}
    default = Config()
    rows: list[dict[str, Any]] = []
    for name in sorted(Config.names()):
        value = getattr(conf, name)
        source = conf.sources.get(name, "default")
        if show_all or source != "default" or value != getattr(default, name):
            rows.append({"name": name, "value": mask_setting(name, value), "source": source})
    for name, value in sorted(conf.plugin_settings.items()):
        source = conf.sources.get(name, "default")
        if show_all or source != "default":
            shown = "********" if name in secrets and value is not None else mask_setting(name,
                                                                                          value)
            rows.append({"name": name, "value": shown, "source": source})
    about = {"software": f"kernel {kernel.__version__}",
             "python": f"{platform.python_version()} ({platform.python_implementation()})",
             "platform": platform.platform(),
             "app": app.import_spec if state.app_spec else f"{app.main} (no -A)",
             "plugins": ", ".join(sorted(i.name for i in app.plugins.infos()))}
    if as_json:
        click.echo(json.dumps({**about, "settings": rows}, indent=2, default=repr))
        return
    for key, text in about.items():
        click.echo(f"{key} -> {text}")
    click.echo("")
    width = max((len(row["name"]) for row in rows), default=0)
    for row in rows:
        click.echo(f"{row['name']:<{width}} = {json.dumps(row['value'], default=repr)}"
                   f"    [{row['source']}]")

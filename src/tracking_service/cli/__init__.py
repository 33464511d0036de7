"""The `tracking-service` command line: one Typer app, its commands grouped by area.

`serve` (serve, worker, migrate), `rules` (check-rules), `history` (import-history, backtest),
`carriers` (track, detect, sim-carrier, sim-label) and `reports` (report promises); `common`
holds what they share.
"""

from __future__ import annotations

import typer

from tracking_service.cli import api_keys, carriers, history, reports, rules, serve, tracking

app = typer.Typer(
    help="Delivery promises, order tracking and delay warnings. "
    "Configuration comes from TRACKING_* environment variables or a .env file.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

app.command()(serve.serve)
app.command()(serve.worker)
app.command()(serve.migrate)
app.command("import-history")(history.import_history)
app.command()(history.backtest)
app.command("check-rules")(rules.check_rules)
app.command()(carriers.track)
app.command()(carriers.detect)
app.command("sim-carrier")(carriers.sim_carrier)
app.command("sim-label")(carriers.sim_label)
app.command()(tracking.poll)
app.command("create-api-key")(api_keys.create_api_key)
app.command("list-api-keys")(api_keys.list_api_keys)
app.command("revoke-api-key")(api_keys.revoke_api_key)
app.add_typer(reports.app, name="report")


def main() -> None:
    app()


__all__ = ["app", "main"]

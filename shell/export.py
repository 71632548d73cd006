"""`rankbot export`: the stored history is the users' data, printed in plain formats."""

from __future__ import annotations

import click


@click.group()
def export() -> None:
    """Print the stored history: the catalog at a time, price steps, changes found."""

"""The shared rich console and the few message styles every verb uses."""

from __future__ import annotations

from rich.console import Console

#: Status and tables go to stderr so that stdout stays clean for data a verb prints.
console = Console(stderr=True, highlight=False)


def print_error(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")


def print_warning(message: str) -> None:
    console.print(f"[yellow]warning:[/] {message}")


def print_ok(message: str) -> None:
    console.print(f"[green]✓[/] {message}")

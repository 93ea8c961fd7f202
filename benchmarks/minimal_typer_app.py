"""The baseline for bench_help.py: the smallest two-command Typer app, with Typer's default settings.

Run: python benchmarks/minimal_typer_app.py --help
"""

import typer

app = typer.Typer()


@app.command()
def hello(name: str) -> None:
    """Say hello to NAME."""
    typer.echo(f"Hello {name}")


@app.command()
def goodbye(name: str) -> None:
    """Say goodbye to NAME."""
    typer.echo(f"Goodbye {name}")


if __name__ == "__main__":
    app()

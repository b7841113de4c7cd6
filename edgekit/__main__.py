"""`python -m edgekit` is the `edgekit` command."""

from edgekit.cli import entry

if __name__ == "__main__":
    entry()

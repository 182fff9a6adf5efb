"""`python -m indexer`: the same as the `indexer` command."""

from .cli import main

main()

"""`python -m huntlab.cli` runs the command line."""

from huntlab.cli.main import main

main()

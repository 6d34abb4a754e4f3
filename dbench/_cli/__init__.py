"""The ``dbench`` command line: one module per subcommand, :mod:`dbench._cli.main` builds the parser.

Each subcommand module has ``register(subparsers)``, which adds its parser and sets
``func(args) -> exit code``; library code defines no commands. Other packages add subcommands
through the entry-point group ``dbench.commands`` (:mod:`dbench._cli.plugins`). Nothing here imports
torch, matplotlib or the metrics until a command runs, so ``dbench --help`` stays fast.
"""

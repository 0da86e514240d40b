"""``datasaur-notifier doctor``: is this config going to work?

Four groups of checks, in order, each its own module: ``config_state`` (the config as
``check-config`` reads it, the state store), ``datasaur`` (token, the selection the
server accepts, how it answers an unknown id), ``callbacks`` (each callback reached
without sending anything) and ``listener`` (the API's address and tokens). ``report``
holds the result type and prints it; ``command`` is the CLI entry.
"""

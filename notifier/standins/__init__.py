"""Local stand-ins for what the daemon talks to, used by ``demo``, ``simulate``, the tests
and the benchmark: a Datasaur simulator (:mod:`.simulator`) and a verifying webhook
receiver (:mod:`.receiver`). Never used by ``run`` itself.
"""

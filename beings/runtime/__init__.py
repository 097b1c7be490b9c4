"""The sandbox in which being code runs: a zygote that never imported Django forks one child per run.

``sandbox`` is the worker's side (``Sandbox.run``), ``zygote`` the process that forks the children,
``layers`` the kernel layers a child puts on before it reads its job, ``restricted`` the
RestrictedPython world being code lives in, and ``protocol`` the frames between worker and child.
Nothing in this package imports Django: the zygote imports it and must stay free of secrets.
"""

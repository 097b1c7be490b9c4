"""Executions: what to run, queueing it, running it on a worker through the sandbox, and how it went.

A door resolves a ``Target`` (a soul, alias or hash; with an environment, the hash promoted there)
and calls ``execution_start``, which checks ``beings.execute_being``, records a queued
``Execution`` and sends ``beings.tasks.execution_run`` to the being's queue (``io`` or ``cpu``)
when the transaction commits, with a broker priority taken from the being's energy.

On the worker, ``execution_run`` claims the row (a finished run is never run again), rebuilds the
pinned genotype, and hands the job to the sandbox. The worker never runs being code itself. The
being's ``execution()`` and ``summon()`` come back as requests that ``_Requests`` performs as the
user who started the run, with that user's permissions: a nested execution is a child row run
inline in the same worker (a prefork process waiting on its own queue would deadlock) with the
wall-clock time its caller has left; a summon creates a being through the services. Both are
recorded as child executions and as ``invokes``/``summoned`` relationships.

Every finished run is written to its being: a bounded ``memories`` event, run statistics in
``self_awareness`` and ``energy_level`` one up on success, one down on failure, within 0..100.

Cancelling a queued run marks it killed and the worker that later takes its message skips it.
Cancelling a running run marks it (and the nested runs under it) killed at once: its result is
discarded and it may start no further nested execution or summon, but its sandbox child runs on
until it ends or reaches its wall-clock limit, which bounds what it can still cost. Killing the
child from another host would need a signal path to every worker; terminating a Celery task
kills a whole prefork process and cannot stop a thread of the io pool.

A worker that dies mid-run leaves its row ``running``: ``executions_reap`` (beat, every minute)
puts a run still running ``LUXOS_EXECUTION_REAP_GRACE_SECONDS`` after its wall-clock limit back in
the queue once, and marks it killed the second time.
"""

"""How a run executes its steps (``WFM_STEP_EXECUTOR``): each step in its own process, started by spawning a
fresh interpreter (``multiprocess``) or by forking a server that has imported the code location once
(``forkserver``), or every step inside the run worker (``in_process``).

A step process buys isolation (a killed or leaking step does not take the run worker with it, and the
export steps of a run overlap their API waits); a spawned one also pays for importing Dagster and the code
location again, every step. BENCHMARKS.md ("One-day runs") measures the three.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from wfm_pipeline.processes import bind_step_to_run_worker

STEP_EXECUTORS: Mapping[str, dg.ExecutorDefinition] = {
    "multiprocess": dg.multiprocess_executor,
    # Dagster preloads the code location's module (wfm_pipeline.definitions) in the fork server.
    "forkserver": dg.multiprocess_executor.configured(
        {"start_method": {"forkserver": {}}}, name="forkserver_multiprocess_executor"
    ),
    "in_process": dg.in_process_executor,
}


def bind_to_run_worker(context: dg.AssetExecutionContext) -> None:
    """Make the step's process die with its run worker (a killed run must not leave a step holding the
    DuckDB writer or a job slot), where the step has a process of its own. Under ``in_process`` the step
    runs in the run worker itself, which the code server started as a multiprocessing child: binding it
    would kill the run whenever the code server dies or restarts."""
    if context.job_def.executor_def is not dg.in_process_executor:
        bind_step_to_run_worker()

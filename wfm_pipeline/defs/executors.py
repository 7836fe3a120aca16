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

STEP_EXECUTORS: Mapping[str, dg.ExecutorDefinition] = {
    "multiprocess": dg.multiprocess_executor,
    # Dagster preloads the code location's module (wfm_pipeline.definitions) in the fork server.
    "forkserver": dg.multiprocess_executor.configured(
        {"start_method": {"forkserver": {}}}, name="forkserver_multiprocess_executor"
    ),
    "in_process": dg.in_process_executor,
}

"""The Ray engine: the same plan, on a Ray cluster. One actor per worker, each with its own onnxruntime
session of every model (loaded from the model files, sidecars included), taking a batch of tasks per call;
results come back to the driver, which alone writes the store, one result at a time, so a killed audit
resumes exactly as with the embedded engine. Seeds depend only on the plan and the task, so both engines
give the same results. Actors ask for a GPU share when the cluster has GPUs, else one CPU each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from service.audit.dataset import Item
from service.audit.engine import AuditPlan, Task, Worker, pending
from service.audit.store import ResultStore

BATCH = 8  # tasks per actor call: amortises Ray's per-call cost without starving the other actors


def _actor_class(ray):
    class Auditor:
        def __init__(self, model_files: list[tuple[str, str]], plan: AuditPlan) -> None:
            from service.runtime.loader import load_model

            models = [load_model(name, Path(path).read_bytes(), source=path, model_path=Path(path))
                      for name, path in model_files]
            self.worker = Worker(models, plan)

        def compute(self, tasks: list[Task]) -> list[dict]:
            return [self.worker.compute(task) for task in tasks]

    return ray.remote(Auditor)


def run_audit_ray(model_files: list[tuple[str, Path]], items: list[Item], plan: AuditPlan, store: ResultStore, *,
                  address: str | None = None, workers: int = 2,
                  on_result: Callable[[int, int], None] | None = None) -> int:
    """Compute and store every missing result on Ray; ``address`` None starts a local cluster of ``workers``
    CPUs. Returns how many were computed."""
    import ray
    from ray.util import ActorPool

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    try:
        done = store.done()
        tasks = pending([name for name, _ in model_files], plan, items, done)
        gpus = ray.cluster_resources().get("GPU", 0)
        options = {"num_gpus": min(1.0, gpus / workers)} if gpus else {"num_cpus": 1}
        actor = _actor_class(ray).options(**options)
        files = [(name, str(path)) for name, path in model_files]
        pool = ActorPool([actor.remote(files, plan) for _ in range(workers)])
        batches = [tasks[i:i + BATCH] for i in range(0, len(tasks), BATCH)]
        finished, total = len(done), len(done) + len(tasks)
        for results in pool.map_unordered(lambda a, batch: a.compute.remote(batch), batches):
            for result in results:
                store.add(**result)
                finished += 1
                if on_result is not None:
                    on_result(finished, total)
        return len(tasks)
    finally:
        if started_here:
            ray.shutdown()

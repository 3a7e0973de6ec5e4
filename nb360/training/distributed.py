"""Data-parallel training across processes started by `torchrun`: set-up, rank queries and collectives.

`torchrun --nproc_per_node K -m nb360 evaluate ...` starts K processes with RANK, WORLD_SIZE and
LOCAL_RANK set; `init(device)` joins them into one process group (NCCL on CUDA, gloo on the CPU).
`fit` notices an active group and trains with a DistributedSampler and DistributedDataParallel;
everything here is a no-op (or the identity) in a single process, so callers need no branches.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import InputError

TIMEOUT_ENV = "NB360_DIST_TIMEOUT_MIN"  # minutes a rank waits at a collective (rank 0 evaluates alone meanwhile)


@dataclass(frozen=True)
class Launch:
    """Where this process sits in a torchrun launch."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1


def launch_from_env(environ: dict[str, str] | None = None) -> Launch:
    """The rank, world size and local rank torchrun set (a single process when they are absent)."""
    env = os.environ if environ is None else environ
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise InputError(f"bad torchrun environment (RANK/WORLD_SIZE/LOCAL_RANK): {exc}; start nb360 with "
                         "`torchrun --nproc_per_node K -m nb360 ...`") from None
    if world < 1 or not 0 <= rank < world:
        raise InputError(f"bad torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return Launch(rank=rank, world_size=world, local_rank=local)


def init(device: str = "cpu", environ: dict[str, str] | None = None) -> tuple[Launch, torch.device]:
    """Join the torchrun process group when there is one; return (launch, this process's device).

    CPU training uses the gloo backend, CUDA training NCCL with one GPU per process (cuda:LOCAL_RANK).
    """
    launch = launch_from_env(environ)
    kind = torch.device(device).type
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda was asked for but torch sees no CUDA GPU (torch.cuda.is_available() is "
                             "False); use --device cpu or a CUDA build of torch")
        if launch.distributed:
            if launch.local_rank >= torch.cuda.device_count():
                raise InputError(f"local rank {launch.local_rank} has no GPU: torch sees {torch.cuda.device_count()}; "
                                 "use --nproc_per_node <= the number of GPUs")
            torch.cuda.set_device(launch.local_rank)
            target = torch.device("cuda", launch.local_rank)
        else:
            target = torch.device(device if ":" in device else "cuda")
    elif kind == "cpu":
        target = torch.device("cpu")
    else:
        raise InputError(f"unsupported device {device!r}: use cpu or cuda")
    if launch.distributed and not is_active():
        import torch.distributed as dist

        minutes = float(os.environ.get(TIMEOUT_ENV, "120"))
        dist.init_process_group("nccl" if kind == "cuda" else "gloo", rank=launch.rank,
                                world_size=launch.world_size, timeout=_dt.timedelta(minutes=minutes))
    return launch, target


def is_active() -> bool:
    """True inside an initialised process group of more than one process."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    import torch.distributed as dist

    return dist.get_rank() if is_active() else 0


def world_size() -> int:
    """Number of processes training together (1 without a process group)."""
    import torch.distributed as dist

    return dist.get_world_size() if is_active() else 1


def is_main() -> bool:
    """True on the process that writes files and prints (rank 0)."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_active():
        import torch.distributed as dist

        dist.barrier()


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sums of `values` over all ranks (float64; the identity in a single process)."""
    if not is_active():
        return list(values)
    import torch.distributed as dist

    # NCCL reduces only CUDA tensors; gloo takes CPU tensors.
    where = device if device.type == "cuda" else torch.device("cpu")
    tensor = torch.tensor(values, dtype=torch.float64, device=where)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return [float(v) for v in tensor.cpu()]


def all_gather(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order ([obj] in a single process)."""
    if not is_active():
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s `obj` on every rank (`obj` itself in a single process)."""
    if not is_active():
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def shutdown(synchronize: bool = True) -> None:
    """Leave the process group (no-op when there is none); with `synchronize`, after every rank got here.

    Why the barrier: ranks finish at different times (only rank 0 evaluates and writes), and a gloo rank
    that tears down its connections while a peer still holds them can abort its process ("terminate
    called without an active exception", seen in CI). On an error path pass `synchronize=False`: the
    other ranks may never arrive, and torchrun stops them once this rank exits non-zero.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if synchronize and dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()

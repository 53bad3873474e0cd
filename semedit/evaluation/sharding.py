"""Work split over processes, GPUs and machines with torch.distributed, as torchrun starts them.

One process (``python -m semedit eval``) is a shard of one. Under ``torchrun`` every process
reads its place from the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``),
takes the GPU of its local rank when there are GPUs, and joins the process group: NCCL on GPUs,
gloo on CPUs. Work is dealt round-robin (``Shard.mine``); results travel to the first process as
Python objects (``gather_to_first``), so no shared file system is needed between machines.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence

import torch
import torch.distributed as dist

from ..settings import resolve_device


@dataclass(frozen=True)
class Shard:
    """This process's place: ``rank`` of ``world`` processes; ``device`` it computes on."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def first(self) -> bool:
        return self.rank == 0

    def mine(self, items: Sequence) -> list:
        """This shard's share of ``items``: every world-th one, from its rank."""
        return list(items[self.rank::self.world])


def start(device: str = "auto", env: Optional[Mapping[str, str]] = None) -> Shard:
    """This process's shard; under torchrun (``WORLD_SIZE`` > 1) it joins the process group.
    ``device`` "auto" takes ``cuda:LOCAL_RANK`` when GPUs are visible, else the CPU."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1"))
    rank, local = int(env.get("RANK", "0")), int(env.get("LOCAL_RANK", "0"))
    unindexed = device in ("", "auto", "cuda")  # resolve_device would name the current GPU, the same for all
    dev = resolve_device(device)
    if dev.type == "cuda" and unindexed:
        dev = torch.device("cuda", local % max(1, torch.cuda.device_count()))
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Shard(rank, world, dev)


def all_gather(shard: Shard, obj: Any) -> List[Any]:
    """Every shard's ``obj``, in rank order, on every shard."""
    if shard.world == 1:
        return [obj]
    out: List[Any] = [None] * shard.world
    dist.all_gather_object(out, obj)
    return out


def gather_to_first(shard: Shard, obj: Any) -> Optional[List[Any]]:
    """Every shard's ``obj`` in rank order on the first shard; None on the others."""
    if shard.world == 1:
        return [obj]
    out: Optional[List[Any]] = [None] * shard.world if shard.first else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast_from_first(shard: Shard, obj: Any) -> Any:
    """The first shard's ``obj`` on every shard."""
    if shard.world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def finish(shard: Shard) -> None:
    """Leave the process group (after a last barrier, so no shard exits while others talk)."""
    if shard.world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()

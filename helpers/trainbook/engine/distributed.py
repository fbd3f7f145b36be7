"""Single-process and torchrun/DDP execution behind one small object.

    dist = DistContext.from_config(cfg); model = dist.wrap(model)

Data order: epoch e uses randperm(n, seed + e) in both modes. Under DDP the permutation is
padded to a multiple of the world size and rank r takes every world_size-th index from r (the
DistributedSampler rule), so micro-batch b of all ranks together is one contiguous slice of
the single-process order: same global batch, same samples.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.distributed as torch_dist

from ..env import torchrun_env


@dataclasses.dataclass
class DistContext:
    enabled: bool = False
    rank: int = 0
    world_size: int = 1
    device: torch.device | None = None

    @classmethod
    def from_config(cls, cfg) -> "DistContext":
        if cfg.strategy != "ddp":
            return cls()
        env = torchrun_env()
        if torch.cuda.is_available() and cfg.device != "cpu":  # device='cpu' keeps DDP on gloo
            device = torch.device("cuda", env["local_rank"])
            torch.cuda.set_device(device)
            backend = "nccl"
        else:
            device, backend = torch.device("cpu"), "gloo"
        if not torch_dist.is_initialized():
            torch_dist.init_process_group(backend=backend)
        return cls(True, torch_dist.get_rank(), torch_dist.get_world_size(), device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model):
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(model, device_ids=ids)

    def shard_len(self, n: int) -> int:
        return math.ceil(n / self.world_size)

    def epoch_indices(self, n: int, seed: int, epoch: int) -> list[int]:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        if not self.enabled:
            return order
        total = self.shard_len(n) * self.world_size
        order += order[: total - n]
        return order[self.rank:total:self.world_size]

    def all_reduce_sum(self, value: float) -> float:
        t = torch.tensor([float(value)], dtype=torch.float64, device=self._reduce_device())
        torch_dist.all_reduce(t)
        return float(t.item())

    def all_reduce_tensor(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self._reduce_device())
        torch_dist.all_reduce(t)
        return t.cpu()

    def _reduce_device(self):
        return self.device if self.device is not None and self.device.type == "cuda" else torch.device("cpu")

    def barrier(self):
        if self.enabled:
            torch_dist.barrier()

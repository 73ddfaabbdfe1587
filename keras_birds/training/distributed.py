"""Data-parallel training over torchrun processes (one per device) that keeps Keras' `fit`.

torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; without them (or with WORLD_SIZE=1) every function here is a
no-op, so the single-process path runs no distributed code. Under torchrun:

- each rank trains on a rank-strided shard of the training data, reshuffled every epoch (ShardedLoader):
  the global batch is batch_size x world size, and the recipe's LR applies to that global batch;
- the optimizer averages gradients across ranks before each update (average_gradients): what DDP does,
  minus overlapping the all-reduce with the backward pass;
- all variables are broadcast from rank 0 once before training, BatchNorm moving statistics averaged
  at each epoch end, so every rank holds the same weights whenever one is saved or validated;
- validation runs on a strided shard per rank and is gathered back into the single-process order;
- rank 0 alone writes the run directory and logs, fits the head (broadcast) and builds the array cache
  first; the others wait at barriers. Each rank draws its own augmentation; state.json stores the world
  size, and a resume with another one is refused.
"""
from __future__ import annotations

import atexit
import contextlib
import math
import os

import numpy as np

from keras_birds.data.loader import BatchLoader
from keras_birds.data.sources import SplitIndex


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def active() -> bool:
    return world_size() > 1


def is_main() -> bool:
    return rank() == 0


def init():
    """Join the process group (nccl with one GPU per rank, else gloo); idempotent, no-op alone."""
    if not active():
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if torch.cuda.is_available():
        # Keras' torch backend places tensors on "cuda", i.e. the current device: make it this rank's.
        torch.cuda.set_device(local_rank())
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend)
    atexit.register(destroy)


def destroy():
    if active():
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def barrier():
    if active():
        import torch.distributed as dist

        dist.barrier()


@contextlib.contextmanager
def main_first():
    """Rank 0 runs the block first, the others after it: e.g. one rank builds a shared cache, the rest reuse it."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def _all_reduce_mean(tensors):
    """Average a list of torch tensors across ranks in place, one all-reduce per dtype (fewer, larger messages)."""
    import torch
    import torch.distributed as dist

    by_dtype = {}
    for t in tensors:
        by_dtype.setdefault((t.dtype, t.device), []).append(t)
    for group in by_dtype.values():
        flat = torch.cat([t.reshape(-1) for t in group])
        dist.all_reduce(flat)
        flat /= world_size()
        offset = 0
        for t in group:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()


def average_gradients(optimizer):
    """Make `optimizer.apply` average the gradients across ranks first (a LossScaleOptimizer included:
    the scaled gradients average alike, and an inf on one rank then skips the step on every rank)."""
    if not active() or getattr(optimizer, "_averages_gradients", False):
        return optimizer
    apply = optimizer.apply

    def apply_averaged(grads, trainable_variables=None):
        import torch

        with torch.no_grad():
            _all_reduce_mean([g for g in grads if g is not None])
        return apply(grads, trainable_variables)

    optimizer.apply = apply_averaged
    optimizer._averages_gradients = True
    return optimizer


def broadcast_variables(model):
    """Every variable (trainable and not) from rank 0, so all ranks start from the same weights."""
    if not active():
        return
    import torch
    import torch.distributed as dist

    with torch.no_grad():
        for v in model.variables:
            dist.broadcast(v.value.data, src=0)


def average_moving_statistics(model):
    """Average the float non-trainable variables (BatchNorm moving mean/variance) across ranks:
    each rank updated them on its own shard; seed-generator states (integers) are left alone."""
    if not active():
        return
    import torch

    with torch.no_grad():
        _all_reduce_mean([v.value.data for v in model.non_trainable_variables if v.value.is_floating_point()])


def average_logs(logs: dict) -> dict:
    """Training loss/accuracy averaged over the ranks' shards (equal sizes), for the metrics log."""
    if not active() or not logs:
        return logs
    import torch
    import torch.distributed as dist

    keys = sorted(k for k, v in logs.items() if isinstance(v, (int, float, np.floating)) or np.ndim(v) == 0)
    values = torch.tensor([float(logs[k]) for k in keys], dtype=torch.float64,
                          device="cuda" if torch.cuda.is_available() else "cpu")
    dist.all_reduce(values)
    return {**logs, **dict(zip(keys, (values / world_size()).tolist()))}


def strided(index: SplitIndex) -> SplitIndex:
    """This rank's evaluation shard: items rank, rank+W, ... (gather_strided puts them back in order)."""
    if not active():
        return index
    r, w = rank(), world_size()
    return SplitIndex(index.split, index.class_names, index.paths[r::w], index.labels[r::w])


def _all_gather(obj):
    import torch.distributed as dist

    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def gather_strided(*arrays):
    """Per-rank arrays of a strided shard -> the full arrays in the original order, on every rank."""
    if not active():
        return arrays
    parts = _all_gather(arrays)
    full = []
    for k in range(len(arrays)):
        pieces = [p[k] for p in parts]
        out = np.empty((sum(len(p) for p in pieces),) + pieces[0].shape[1:], dtype=pieces[0].dtype)
        for r, p in enumerate(pieces):
            out[r::world_size()] = p
        full.append(out)
    return tuple(full)


def merge_skipped(skipped):
    """Every rank's unreadable files into `skipped` (each rank decodes only its shard)."""
    if active():
        for files in _all_gather(dict(skipped.files)):
            for path, reason in files.items():
                skipped.add(path, reason)


class ShardedLoader(BatchLoader):
    """A shuffled training loader that yields only this rank's share of each epoch's permutation.

    Every rank draws the same permutation (same seed), pads it by wrapping around to a multiple of the
    world size (as torch's DistributedSampler does) and takes items rank, rank+W, ...: equal step counts
    on every rank (an all-reduce waits for all), and step k's global batch is the same images a single
    process with batch_size x W would see.
    """

    def __init__(self, index, *args, **kwargs):
        super().__init__(index, *args, **kwargs)
        self._shard()

    def _shard(self):
        w = world_size()
        self.order = np.resize(self.order, math.ceil(len(self.order) / w) * w)[rank()::w]  # wraps around

    def __len__(self):
        return math.ceil(len(self.order) / self.batch_size)

    def on_epoch_end(self):
        super().on_epoch_end()  # a fresh full permutation when shuffling
        if self.shuffle:
            self._shard()


def train_loader_class():
    return ShardedLoader if active() else BatchLoader

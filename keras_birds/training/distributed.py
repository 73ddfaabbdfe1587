"""Data-parallel training that keeps Keras' `fit`: torchrun processes (torch), or one process whose
keras.distribution.DataParallel splits each batch across devices (jax; `data_parallel`).

JAX: every step is one global batch of batch_size x devices images (GlobalBatchLoader: the images of
torchrun's step), split evenly across the devices; gradients and BatchNorm statistics are computed over
the whole batch by XLA, weights are replicated, validation and the head's probe run as on one device.

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

from keras_birds import backends
from keras_birds.data.loader import BatchLoader
from keras_birds.data.sources import SplitIndex
from keras_birds.errors import UserError


def world_size() -> int:
    """torchrun processes (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def replicas() -> int:
    """Copies of the model training data-parallel: torchrun processes x the JAX DataParallel's devices."""
    if backends.current() != "jax":
        return world_size()
    import keras

    parallel = keras.distribution.distribution()
    return world_size() * (int(parallel.device_mesh.devices.size) if parallel is not None else 1)


def data_parallel(devices: int):
    """A keras.distribution.DataParallel over the first `devices` JAX devices (None for one): train()
    runs inside its scope. On torch, several devices mean torchrun processes (the command starts them)."""
    if devices <= 1:
        return None
    backends.require("--devices N > 1")
    if backends.current() != "jax":
        raise UserError(f"--devices {devices} on the torch backend runs through torchrun: use `keras-birds train "
                        f"--devices {devices}` (it starts torchrun) rather than train() in one process")
    import jax
    import keras

    found = jax.devices()
    if devices > len(found):
        raise UserError(f"--devices {devices}: JAX sees {len(found)} {found[0].platform} device(s); on a CPU set "
                        f"XLA_FLAGS=--xla_force_host_platform_device_count={devices} before Python starts")
    return keras.distribution.DataParallel(devices=found[:devices])


def batch_predictor(model):
    """model.predict_on_batch, under a JAX DataParallel with each batch split across the devices: on
    replicated weights and an unsplit input, XLA has every device compute the whole batch."""
    import keras

    parallel = keras.distribution.distribution() if backends.current() == "jax" else None
    if parallel is None:
        return model.predict_on_batch
    import jax

    n = int(parallel.device_mesh.devices.size)

    def predict(x):
        x = np.asarray(x)
        rows = _wrapped(np.arange(len(x)), n)  # padded with repeats: splits evenly
        layout = parallel.get_data_layout((len(rows),) + x.shape[1:]).backend_layout
        return model.predict_on_batch(jax.device_put(x[rows], layout))[:len(x)]

    return predict


@contextlib.contextmanager
def single_device():
    """No Keras distribution inside: a small side model (the head's full-batch probe) trains on one
    device, whatever its batch size (a DataParallel batch must split evenly across the devices)."""
    import keras

    previous = keras.distribution.distribution() if backends.current() == "jax" else None
    if previous is None:
        yield
        return
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


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
    if backends.current() != "torch":  # these collectives move torch tensors
        raise UserError(f"torchrun trains on the torch backend, not {backends.current()}; on jax use "
                        f"`keras-birds train --devices N` in one process")
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
        self.order = _wrapped(self.order, world_size())[rank()::world_size()]

    def __len__(self):
        return math.ceil(len(self.order) / self.batch_size)

    def on_epoch_end(self):
        super().on_epoch_end()  # a fresh full permutation when shuffling
        if self.shuffle:
            self._shard()


class GlobalBatchLoader(ShardedLoader):
    """A JAX DataParallel's training loader: one global batch of batch_size x devices per step, the
    permutation wrapped as ShardedLoader's, so step k holds torchrun's step k images. A batch that lost
    unreadable files is topped up with repeats of its own images: a batch must split evenly."""

    def __init__(self, index, image_size, batch_size, **kwargs):
        self.devices = replicas()
        super().__init__(index, image_size, batch_size * self.devices, **kwargs)

    def _shard(self):
        self.order = _wrapped(self.order, self.devices)

    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        if len(y) % self.devices:
            rows = _wrapped(np.arange(len(y)), self.devices)
            x, y = x[rows], y[rows]
        return x, y


def _wrapped(order, w: int):
    """`order` extended by wrapping around to a multiple of w (as torch's DistributedSampler pads)."""
    return np.resize(order, math.ceil(len(order) / w) * w)


def train_loader_class():
    if active():
        return ShardedLoader
    return GlobalBatchLoader if replicas() > 1 else BatchLoader

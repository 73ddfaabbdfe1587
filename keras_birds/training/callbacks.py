"""Per-epoch bookkeeping: validation, atomic checkpoints, best epoch, metrics log, resume state."""
from __future__ import annotations

import shutil
import time

import keras
import numpy as np

from keras_birds.evaluation.metrics import topk_accuracy  # one tie rule for training logs and eval
from keras_birds.inference.mirror import flip_averaged  # the flip TTA eval and predict apply
from keras_birds.run_dir import RunDir, atomic_save, atomic_write_json
from keras_birds.training import distributed


def save_model_weights(model, path):
    """Model weights only: Keras' save_weights also stores the optimizer (3x the size) in every file."""
    from keras.src.saving import saving_lib

    saving_lib.save_weights_only(model, str(path), objects_to_skip=[model.optimizer] if model.optimizer else None)


def optimizer_state(optimizer) -> dict:
    return {f"v{i:04d}": keras.ops.convert_to_numpy(v) for i, v in enumerate(optimizer.variables)}


def restore_optimizer_state(optimizer, trainable_variables, path):
    """Build the optimizer for these variables and load its saved slots (momenta, step count)."""
    optimizer.build(trainable_variables)
    saved = np.load(path)
    if len(saved.files) != len(optimizer.variables):
        raise ValueError(f"{path}: optimizer state has {len(saved.files)} variables, expected {len(optimizer.variables)}")
    for i, v in enumerate(optimizer.variables):
        v.assign(saved[f"v{i:04d}"])


def predict_probs(model, loader, tta_flip=False):
    """Probabilities and labels over a whole loader; with tta_flip, averaged with the mirror image."""
    probs, labels = [], []
    predict = distributed.batch_predictor(model)
    for i in range(len(loader)):
        x, y = loader[i]
        # predict_on_batch runs without gradient tracking (a plain call keeps autograd graphs: GBs).
        probs.append(flip_averaged(predict)(x) if tta_flip else predict(x))
        labels.append(y.argmax(1))
    return np.concatenate(probs), np.concatenate(labels)


class EpochCheckpoint(keras.callbacks.Callback):
    """After each epoch: validate, save weights + optimizer, update best, then commit state.json.

    state.json is written last: a kill at any point leaves the previous epoch fully intact.
    Under torchrun every rank validates its share; rank 0 alone writes, and all wait for it.
    """

    def __init__(self, run: RunDir, phase, valid_loader, schedule, skipped, tta_flip=False, log=print):
        super().__init__()
        self.run, self.phase, self.valid_loader = run, phase, valid_loader
        self.schedule, self.skipped, self.tta_flip, self.log = schedule, skipped, tta_flip, log
        self.rows = run.read_metrics()
        state = run.read_state()
        self.best = state.get("best_val_top1", -1.0)
        self.best_epoch = state.get("best_epoch", 0)
        self._t0 = None

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.time()

    def on_epoch_end(self, epoch, logs=None):
        n = epoch + 1
        # Ranks trained on different shards: equal weights first (BN statistics), then whole-split figures.
        distributed.average_moving_statistics(self.model)
        logs = distributed.average_logs(logs or {})
        probs, labels = distributed.gather_strided(*predict_probs(self.model, self.valid_loader, self.tta_flip))
        distributed.merge_skipped(self.skipped)
        eps = 1e-7
        val_loss = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], eps, 1)).mean())
        val_top1, val_top5 = topk_accuracy(probs, labels, 1), topk_accuracy(probs, labels, 5)
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        row = {
            "epoch": n, "phase": self.phase.number,
            "loss": round(float(logs.get("loss", float("nan"))), 5),
            "top1": round(float(logs.get("top1", float("nan"))), 5),
            "top5": round(float(logs.get("top5", float("nan"))), 5),
            "val_loss": round(val_loss, 5), "val_top1": round(val_top1, 5), "val_top5": round(val_top5, 5),
            "lr": float(keras.ops.convert_to_numpy(self.schedule(max(step - 1, 0)))),
            "seconds": round(time.time() - self._t0, 1),
        }
        if val_top1 > self.best:
            self.best, self.best_epoch = val_top1, n
        if distributed.is_main():
            self._commit(n, row)
        distributed.barrier()  # a rank that goes on (or a later resume) sees this epoch committed

    def _commit(self, n, row):
        atomic_save(self.run.epoch_weights(n), lambda tmp: save_model_weights(self.model, tmp))
        atomic_save(self.run.optimizer_state, lambda tmp: np.savez(tmp, **optimizer_state(self.model.optimizer)))
        if self.best_epoch == n:
            atomic_save(self.run.best_weights, lambda tmp: shutil.copyfile(self.run.epoch_weights(n), tmp))
        self.rows = [r for r in self.rows if r["epoch"] < n] + [row]
        self.run.write_metrics(self.rows)
        atomic_write_json(self.run.skipped_json, self.skipped.as_list())
        atomic_write_json(self.run.state_json, {
            "epochs_done": n, "phase": self.phase.number, "best_epoch": self.best_epoch,
            "best_val_top1": self.best, "world_size": distributed.replicas(),  # resume needs the same
        })
        self.log(f"epoch {n} (phase {self.phase.number}): loss {row['loss']:.4f} top1 {row['top1']:.3f} "
                 f"| valid top1 {row['val_top1']:.3f} top5 {row['val_top5']:.3f} | best epoch {self.best_epoch} "
                 f"({self.best:.3f}) | {row['seconds']:.0f}s")

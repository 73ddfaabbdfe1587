"""The two-phase plan and its one-cycle learning rate."""
from __future__ import annotations

from dataclasses import dataclass

import keras


@dataclass(frozen=True)
class Phase:
    number: int  # 1 = head-only warm-up, 2 = all layers
    first_epoch: int  # 0-based global epoch index where the phase starts
    epochs: int
    peak_lr: float
    train_backbone: bool

    @property
    def end_epoch(self) -> int:
        return self.first_epoch + self.epochs


def two_phase_plan(epochs, lrs) -> list:
    """Phase 1: backbone frozen (BatchNorm in inference mode); phase 2: all layers. Empty phases dropped."""
    (e1, e2), (lr1, lr2) = epochs, lrs
    phases = [Phase(1, 0, int(e1), float(lr1), False), Phase(2, int(e1), int(e2), float(lr2), True)]
    return [p for p in phases if p.epochs > 0]


def one_cycle(peak_lr: float, total_steps: int, warmup_fraction: float = 0.3, div_factor: float = 25.0,
              final_div_factor: float = 1e4):
    """One-cycle LR as Keras' CosineDecay with warm-up: peak/25 -> peak over 30% of steps, then cosine
    down to peak/(25*1e4) (PyTorch OneCycleLR's defaults; its warm-up is cosine, this one linear)."""
    warmup = max(1, round(warmup_fraction * total_steps))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak_lr / div_factor,
        decay_steps=max(1, total_steps - warmup),
        alpha=1.0 / (div_factor * final_div_factor),
        warmup_target=peak_lr,
        warmup_steps=warmup,
    )

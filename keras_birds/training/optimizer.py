"""AdamW with a separate learning-rate multiplier for the classification head."""
from __future__ import annotations

import keras


class HeadLRAdamW(keras.optimizers.AdamW):
    """Keras optimizers have no parameter groups: this splits each update into head and backbone
    variables and scales the head's LR, as PyTorch param groups do (few-shot fine-tuning wants a
    head that moves faster than the pretrained backbone). Weight decay stays at the base LR."""

    def __init__(self, head_lr_mult=1.0, head_prefix="head/", **kwargs):
        super().__init__(**kwargs)
        self.head_lr_mult, self.head_prefix = float(head_lr_mult), head_prefix

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        head = [i for i, v in enumerate(trainable_variables) if v.path.startswith(self.head_prefix)]
        rest = [i for i in range(len(trainable_variables)) if i not in set(head)]
        for idx, lr in ((head, learning_rate * self.head_lr_mult), (rest, learning_rate)):
            if idx:
                super()._backend_update_step([grads[i] for i in idx], [trainable_variables[i] for i in idx], lr)

    def get_config(self):
        return {**super().get_config(), "head_lr_mult": self.head_lr_mult, "head_prefix": self.head_prefix}


def make_optimizer(schedule, weight_decay, head_lr_mult=1.0):
    if head_lr_mult == 1.0:  # the stock class keeps Keras' fused (torch._foreach) update path
        return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=weight_decay)
    return HeadLRAdamW(head_lr_mult=head_lr_mult, learning_rate=schedule, weight_decay=weight_decay)

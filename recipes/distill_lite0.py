"""EfficientNet-Lite0 taught by a bigger model: the few-shot Lite0 recipe's linear probe, one head epoch, then
12 epochs of all layers on the teacher's softened probabilities for the same augmented views (knowledge
distillation through the backbone), so the phone-sized model inherits what the teacher's features see.

    keras-birds train distill_lite0 --data ../shared/data/birds-dev

after training the teacher into runs/effnet_lite2_fewshot (recipes/effnet_lite2_fewshot.py with that --out).

`teacher` is any run directory this toolkit wrote, trained on the same species list (several, comma-separated:
an ensemble); `--set teacher=PATH` picks another. The teacher's outputs on `kd_views` seeded augmented epochs
are computed once and cycled (RUN/teacher_outputs.npy; teacher.json names the teacher and its checksum).

Measured on birds-dev, teacher effnet_lite2_fewshot.py seed 0 (230/250), seeds 0/1/2, 2-core CPU: valid+test
231/228/228 of 250 (mean 229.0) in 696-717 s each. Head-only distillation (epochs=(4, 0), 4 views; the backbone
stays ImageNet's) scored 226/227/226 (226.3): a linear head on frozen features cannot follow the teacher.
"""
from keras_birds.recipe import extends

RECIPE = extends(
    "effnet_lite0_fewshot",
    teacher="runs/effnet_lite2_fewshot",  # relative to the working directory of the command
    kd_temperature=4.0,
    kd_alpha=0.9,
    kd_views=6,  # a new teacher view for each of the first 6 epochs, then cycled
    epochs=(1, 12),  # head epoch from the probe, then all layers (BatchNorm statistics frozen, as effnet_lite0.py)
    lr=(1e-3, 1e-4),  # the backbone's peak LR; the head's is 10x (head_lr_mult of effnet_lite0.py)
    pooling="avg",  # as measured above (effnet_lite0_fewshot.py max-pools since issue 34; not measured here)
    l2_features=False,
)

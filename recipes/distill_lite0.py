"""EfficientNet-Lite0 taught by a bigger model: the few-shot Lite0 recipe (linear probe on frozen ImageNet
features), then head epochs that match the teacher's softened probabilities on the same augmented views
(knowledge distillation), so the phone-sized model inherits what the teacher's features see.

    keras-birds train recipes/distill_lite0.py --data ../shared/data/birds-dev

after training the teacher into runs/effnet_lite2_fewshot (recipes/effnet_lite2_fewshot.py with that --out).

`teacher` is any run directory this toolkit wrote, trained on the same species list (several, comma-separated:
an ensemble); `--set teacher=PATH` picks another. The teacher's outputs on `kd_views` seeded augmented epochs
are computed once and cycled (RUN/teacher_outputs.npy; teacher.json names the teacher and its checksum).
"""
from keras_birds.recipe import extends

RECIPE = extends(
    "effnet_lite0_fewshot",
    teacher="runs/effnet_lite2_fewshot",  # relative to the working directory of the command
    kd_temperature=4.0,
    kd_alpha=0.9,
    kd_views=4,
    epochs=(4, 0),  # head-only: the backbone stays the frozen ImageNet one, as in the few-shot recipe
    lr=(1e-3, 1e-4),
)

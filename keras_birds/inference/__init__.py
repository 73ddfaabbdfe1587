"""Inference: "probabilities for these images" from a run, a .keras, .tflite or .onnx file.

    context.py   RunContext: a run directory resolved once (recipe, model file, class names, data splits)
    runners.py   open_runner(path) -> Runner.predict(images), whatever the file type
    labels.py    where a model's class names come from (its metadata, labels.txt, the run's classes.txt)
    model.py     open_model(path): a runner with its run's input size and flip TTA, as eval and predict use it
    mirror.py    the mirror image (flip TTA, mirrored training views)
    latency.py   batch-1 latency and throughput on the device a runner uses

eval, predict, compare and export sit on top of this layer; it imports none of them.
"""

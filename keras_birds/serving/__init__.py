"""`keras-birds serve`: the model behind an HTTP API (Starlette on uvicorn).

    model.py     which file to answer with (a run's gate-passing int8 .tflite first), opened once
    batcher.py   requests that arrive together run as one batch on one inference thread
    uploads.py   request bodies -> decoded images, with size, pixel and content-type limits
    metrics.py   Prometheus counters and histograms (/metrics)
    app.py       the routes: POST /v1/classify, GET /v1/model, /healthz, /readyz, /metrics
    server.py    uvicorn: one process or several workers, SIGTERM drains in-flight requests

It owns no model logic: answers come from inference.runners and prediction.predict.answers, so a photo
gets the same answer as `keras-birds predict` gives for the same file.
"""

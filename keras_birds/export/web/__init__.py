"""The exported model in a web page: `keras-birds export RUN --web` and `keras-birds serve-web RUN`.

page.py writes EXPORT/web/ (the template/ page, the gated .tflite, model.json), vendor.py brings the
pinned LiteRT.js files it runs on, serve.py serves the folder on 127.0.0.1 for a quick look.
"""

"""The shipped recipes, one file per model (installed as keras_birds.recipes): `keras-birds recipes` lists them
and `keras-birds train NAME` trains one. Files named _* are helpers, not recipes."""

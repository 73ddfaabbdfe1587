"""TensorFlow imported with its start-up noise muted, for the commands that may load it (through Keras)."""
from __future__ import annotations

import os
import sys

import click

from keras_birds.errors import brief


def import_tensorflow_quietly():
    """Import TensorFlow (Keras' seeding and KerasHub pull it in) with file descriptor 2 muted.

    TF 2.21 writes C++ start-up lines (absl, oneDNN, CUDA stub) to stderr before its logging is set up,
    whatever TF_CPP_MIN_LOG_LEVEL says; they would bury the one-line errors of this command.
    """
    import importlib.util

    try:
        if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
            return
    except Exception:  # e.g. an import hook that refuses TF: treat TF as absent
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    failed = None
    try:
        os.dup2(devnull, 2)
        try:
            import tensorflow  # noqa: F401
        except ImportError:  # Keras and KerasHub treat this as "no TF" themselves
            pass
        except Exception as e:
            failed = e
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    if failed is not None:
        # Keras' seeding would trip over the same non-ImportError; as ImportError it means "no TF" there.
        # train/eval/predict/compare of torch models need no TF; export says it cannot import it.
        sys.modules["tensorflow"] = None
        click.echo(f"warning: TensorFlow fails to import ({brief(failed, 160, with_type=True)}); going on without it",
                   err=True)

"""The training job: labelled texts -> a verified, quantized TFLite artifact.

Run it as `python -m maas.training DATA --out DIR` in the training environment (`.venv-train`).
This package is the only part of maas that imports TensorFlow, Keras, scikit-learn or
matplotlib, and it does so lazily: importing `maas.training` (or its light modules `presets`,
`splits` and `quality`) costs nothing, so bad input is refused before TensorFlow loads.
"""

"""Training code: the only part of Tailor that imports TensorFlow/Keras. It runs in the
TrainFunction container image (and locally in its own worker process), never in serving."""

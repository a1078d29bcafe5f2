"""Keras training: tf.data input pipelines, model builders, trainer, evaluator, exporter."""

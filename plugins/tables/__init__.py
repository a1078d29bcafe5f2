"""Table sources: CSV, JSON Lines and existing TFRecord files of tf.train.Example."""

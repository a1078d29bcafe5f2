"""Dataset validation with TensorFlow Data Validation: statistics, schema, anomalies, drift."""

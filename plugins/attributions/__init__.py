"""Attributions for the built-in classifiers (a library, not a plugin: it registers nothing).

The ``explain`` plugin (``pipeline explain``) and the classification evaluator (attributions
for its most confident mistakes) import it on purpose. Modules: ``gradients`` (integrated
gradients and saliency on the model's input, token weights for texts), ``explainer`` (raw input
through the serving preprocessing to attributions), ``render`` (PNG heatmaps, highlighted
text, JSON numbers). TensorFlow and matplotlib are imported inside the functions.
"""

"""TensorFlow Data Validation helpers the validation and streaming plugins share (a library).

``tfdv`` (the validation step and ``pipeline validate``) and ``streaming`` (windowed statistics
and drift alarms) import from here on purpose; nothing here registers a component or imports a
plugin. ``stats`` gathers the public names of the modules below; TFDV, TensorFlow and Beam are
imported inside the functions, so importing any of them stays cheap.
"""

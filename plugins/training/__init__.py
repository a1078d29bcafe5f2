"""The training library the built-in trainer plugins share (a library, not a plugin).

``keras`` (classifiers and regressions), ``text`` (the language model), ``audio`` and
``generative`` (the GAN) import from here on purpose; nothing here registers a component (the
plugins' ``__init__`` modules do) and nothing here imports a plugin. Import the modules
themselves (``from beamline_plugins.training.checkpoints import scratch_dir``): a step's
fingerprint then covers the modules it really uses. TensorFlow, Keras and matplotlib are
imported inside the functions, so importing any of these modules stays cheap.

Public surface, by module:

``records``
    Reading labelled examples with tf.data: ``read_records``, ``labelled_parser``,
    ``label_indexer``, ``label_info``, ``id_features``, ``split_size``; reproducible training
    data: ``cached_and_shuffled``, ``shared_cache`` (one cache for a fit's epochs),
    ``one_pass``, ``epoch_seed`` (an epoch's seed), ``element_seeds``
    (per-element seeds for stateless augmentation).
``image_input``
    The ``image_input`` input pipeline (``ImageInput``) and the one image preprocessing function
    of training and serving, ``decode_image`` / ``decode_image_batch``.
``loop``
    The distributed custom training loop: ``make_steps``, ``run_epoch``, ``make_loss``,
    ``training_stream``, ``epoch_stream``, ``Primer``, ``trace_ahead``, ``EpochMetrics``,
    ``prediction_of``, ``CLASSIFICATION_LOSSES``, ``REGRESSION_LOSSES``.
``strategy``
    ``tf.distribute`` strategies and mixed precision: ``make_strategy``, ``StrategyName``,
    ``split_cpu``, ``is_chief``, ``worker_index``, ``cluster_workers``,
    ``mixed_precision_policy``.
``checkpoints``
    Resume: ``scratch_dir``, ``read_state``, ``write_state``, ``EpochCheckpoints``.
``warm_start``
    Starting a fit from an earlier model's weights: ``parse``, ``locate``, ``read_parent``,
    ``apply``, ``freeze``, ``source_digest``.
``stable_save``
    Byte-stable model files: ``normalise_keras_file``, ``stable_export_archive``,
    ``fresh_names``, ``canonical_function_names``.
``artifact``
    The trainer's model artifact (``model.keras``, ``model.json``): ``write_model``,
    ``input_pipeline_record``, ``trained_model``, ``load_keras_model``,
    ``rebuild_input_pipeline``, ``MODEL_FILE``, ``MODEL_INFO``.
``custom_fit``
    A Keras ``fit`` over an examples artifact's train and eval splits, for trainers with their
    own model and loss (forecast, seq2seq), resumed exactly: ``fit_splits``,
    ``fit_with_history``, ``replay_shuffles``, ``write_fit_report``.
``blessing``
    The evaluator's verdict and the exporter's gate: ``write_blessing``, ``require_blessing``.
``export_steps``
    Writing a byte-stable SavedModel from a Keras model: ``write_saved_model``.
``plots``
    Report plots (matplotlib, Agg): ``pyplot``, ``plot_history``, ``plot_confusion``,
    ``plot_predictions``, ``plot_residuals``.
"""

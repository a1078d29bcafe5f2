"""Reading labelled examples with tf.data: what every input pipeline shares.

Image, text and audio input pipelines differ in how they turn one raw feature into model input;
reading the shards, parsing ``tf.train.Example``, mapping label names to class indices and
carrying id features are the same, and live here. TensorFlow is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

from beamline import Artifact
from beamline.errors import PipelineError
from beamline.examples import example_files, feature_spec


def label_info(examples: Artifact) -> tuple[str, list[str]]:
    """The label feature's name and the class names (index order) of an examples artifact."""
    spec = feature_spec(examples)
    label, classes = spec.get("label"), spec.get("classes")
    if not label or not classes:
        raise PipelineError(
            f"{examples.path}: features.json names no label feature and classes; a classifier "
            "needs labelled examples"
        )
    return str(label), [str(c) for c in classes]


def read_records(
    examples: Artifact,
    split: str,
    parse: Callable[[Any], Any] | None,
    *,
    shuffle_files: bool = False,
    seed: int = 0,
) -> Any:
    """The parsed records of one split: GZIP shards interleaved in parallel, deterministically.

    With ``shuffle_files`` (training) the shard order is reshuffled every epoch from ``seed``.
    With ``parse`` None the serialized records come as they are (for batched parsing)."""
    import tensorflow as tf

    files = example_files(examples, split)
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle_files:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP"),
        cycle_length=min(len(files), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if parse is None:
        return ds
    return ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


_ONE_PASS: contextvars.ContextVar[bool] = contextvars.ContextVar("one_pass", default=False)


@contextlib.contextmanager
def one_pass() -> Iterator[None]:
    """Datasets built inside are read once (an epoch's own data, see ``epoch_seed``): they keep
    no cache, which would only hold a copy of the data until the whole fit ends."""
    token = _ONE_PASS.set(True)
    try:
        yield
    finally:
        _ONE_PASS.reset(token)


_SHARED: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "shared_cache", default=None
)


@contextlib.contextmanager
def shared_cache() -> Iterator[None]:
    """Datasets built inside (the epochs of one fit: one split, each from its own seed) share
    one cache: the first one built caches its records, the later ones read that cache instead
    of their own input, so the records are parsed and decoded once per fit and held once. Build
    first the dataset whose record order the cache should keep (a resumed fit: epoch 1's)."""
    token = _SHARED.set([])
    try:
        yield
    finally:
        _SHARED.reset(token)


def cached_and_shuffled(ds: Any, *, cache: bool, training: bool, buffer: int, seed: int) -> Any:
    """``ds`` kept in memory after its first epoch (``cache``: parsed and decoded once; not
    inside ``one_pass``; inside ``shared_cache`` the first dataset's cache serves them all),
    then, for training, shuffled from ``seed`` anew every epoch (after the cache, so that the
    order still changes and what follows, augmentation among it, still runs every epoch)."""
    if cache and not _ONE_PASS.get():
        shared = _SHARED.get()
        if shared:
            ds = shared[0]
        else:
            ds = ds.cache()
            if shared is not None:
                shared.append(ds)
    if training:
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    return ds


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch`` of a fit seeded ``seed`` (a 31-bit int, well mixed).

    A trainer builds each epoch's training data with this seed: the shuffle order and the
    augmentation of an epoch are then a function of (seed, epoch) alone, and a fit resumed
    after epoch k sees exactly the epochs an uninterrupted fit would have seen."""
    digest = hashlib.sha256(f"{int(seed)}:{int(epoch)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def element_seeds(ds: Any, seed: int) -> Any:
    """``ds`` with each element preceded by its own stateless-random seed (int64 ``[2]``):
    ``(seed, position in ds)``, so random augmentation in a parallel map is the same on
    every run (stateful random ops there draw in whatever order the threads run)."""
    import tensorflow as tf

    base = tf.constant(int(seed), tf.int64)
    return ds.enumerate().map(
        lambda index, element: (tf.stack([base, index]), element),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def label_indexer(examples: Artifact) -> tuple[dict[str, Any], Callable[[dict[str, Any]], Any]]:
    """The parse spec of the label feature and a function from a parsed record to its index.

    The label name is looked up in the artifact's ``classes`` (an int64 label is taken as the
    index); a label outside the classes fails loudly. Every classifier input pipeline (image,
    text, audio, table) maps labels with this one function."""
    import tensorflow as tf

    label, classes = label_info(examples)
    features = feature_spec(examples).get("features", {})
    label_is_index = features.get(label, {}).get("dtype") == "int64"
    spec = {label: tf.io.FixedLenFeature([], tf.int64 if label_is_index else tf.string)}
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(classes), tf.range(len(classes), dtype=tf.int64)
        ),
        default_value=-1,
    )

    def index_of(record: dict[str, Any]) -> Any:
        index = record[label] if label_is_index else table.lookup(record[label])
        checks = [
            tf.debugging.assert_greater_equal(
                index, tf.constant(0, tf.int64), message="label is not one of the classes"
            ),
            tf.debugging.assert_less(
                index, tf.constant(len(classes), tf.int64), message="label index out of range"
            ),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(index)

    return spec, index_of


def id_features(examples: Artifact) -> tuple[list[str], dict[str, Any]]:
    """The id features (modality ``id``) of an artifact and their parse spec (empty default)."""
    import tensorflow as tf

    features = feature_spec(examples).get("features", {})
    ids = [n for n, f in features.items() if f.get("modality") == "id"]
    spec = {}
    for name in ids:
        is_int = features[name].get("dtype") == "int64"
        spec[name] = tf.io.FixedLenFeature(
            [], tf.int64 if is_int else tf.string, default_value=0 if is_int else ""
        )
    return ids, spec


def labelled_parser(
    examples: Artifact, feature: str, *, with_ids: bool = False
) -> Callable[[Any], tuple[Any, Any, dict[str, Any]]]:
    """A function from a serialized example to ``(raw feature, label index, id features)``.

    The raw feature is the bytes of ``feature`` (an encoded image, WAV or text); the label index
    comes from ``label_indexer``. Id features (modality ``id``) come along when ``with_ids``; an
    example without one gets an empty value."""
    import tensorflow as tf

    label_spec, index_of = label_indexer(examples)
    ids, ids_spec = id_features(examples) if with_ids else ([], {})
    parse_spec = {feature: tf.io.FixedLenFeature([], tf.string), **label_spec, **ids_spec}

    def parse(serialized: Any) -> tuple[Any, Any, dict[str, Any]]:
        record = tf.io.parse_single_example(serialized, parse_spec)
        return record[feature], index_of(record), {name: record[name] for name in ids}

    return parse


def split_size(examples: Artifact, split: str) -> int:
    """The number of examples in ``split``: from features.json, else by counting the records."""
    known = feature_spec(examples).get("splits", {}).get(split)
    if known is not None:
        return int(known)
    import tensorflow as tf

    records = tf.data.TFRecordDataset(example_files(examples, split), compression_type="GZIP")
    return int(records.reduce(0, lambda count, _: count + 1))

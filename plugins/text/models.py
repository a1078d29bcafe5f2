"""Text model builders: ``build(inputs, num_classes) -> keras.Model`` over token ids.

``inputs`` is what ``text_input.model_inputs`` returned: one input of modality ``text`` with
``shape`` ([max_length] or [None]), ``vocab_size`` and ``max_length``. Only built-in Keras
layers and ``keras.ops`` are used, so ``model.keras`` loads without custom objects. Id 0 is
padding: recurrent layers mask it, attention and pooling ignore it.
"""

from __future__ import annotations

from typing import Any, Literal

from beamline import Model, ModelInputs, param
from beamline.errors import PipelineError
from beamline_plugins.training.layers import class_scores, regularizer


def text_input(inputs: dict[str, dict[str, Any]], model: str) -> tuple[str, dict[str, Any]]:
    """The one text input of ``inputs`` (name and spec)."""
    texts = [(n, s) for n, s in inputs.items() if s.get("modality") == "text"]
    if len(texts) != 1 or "vocab_size" not in texts[0][1]:
        raise PipelineError(
            f"model '{model}' needs one text input with a vocabulary (use text_input or "
            f"lm_input), got {list(inputs) or 'none'}"
        )
    return texts[0]


def _ids_input(inputs: dict[str, dict[str, Any]], model: str) -> tuple[str, dict[str, Any], Any]:
    import keras

    name, spec = text_input(inputs, model)
    length = spec["shape"][0]
    ids = keras.Input(shape=(length,), dtype="int64", name=name)
    return name, spec, ids


def _head(
    x: Any, units: list[int], dropout: float, num_classes: int, l2: float, name: str = "scores"
) -> Any:
    import keras

    for size in units:
        x = keras.layers.Dense(size, activation="relu", kernel_regularizer=regularizer(l2))(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout)(x)
    return class_scores(x, num_classes, l2, name)


def _masked_mean(x: Any, mask: Any) -> Any:
    from keras import ops

    weights = ops.expand_dims(ops.cast(mask, x.dtype), -1)
    return ops.sum(x * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)


def _bigram_ids(ids: Any, size: int, buckets: int) -> Any:
    """Slot of each adjacent token pair of ``ids``: ``size + hash(pair) % buckets``, or 0 (the
    padding slot, not counted) where either token is padding."""
    from keras import ops

    first, second = ids[:, :-1], ids[:, 1:]
    pair = (first * 1000003 + second) % buckets + size  # 1000003: a prime mixing the first id
    return ops.where(ops.logical_and(first > 0, second > 0), pair, ops.zeros_like(pair))


def char_ngram_table(
    vocabulary: list[str], orders: list[int], buckets: int, offset: int, reserved: int = 2
) -> Any:
    """``[len(vocabulary), k]`` float32: for each token id, the slots (``offset + crc32 % buckets``)
    of the character n-grams of ``<token>`` (``<``, ``>`` mark the word's ends), 0-padded; the
    reserved ids ([PAD], [UNK]) have none. Slot numbers stay below 2**24, exact in float32."""
    import zlib

    import numpy as np

    rows = []
    for i, token in enumerate(vocabulary):
        marked, slots = f"<{token}>", set()
        for n in orders if i >= reserved else ():
            for start in range(len(marked) - n + 1):
                gram = marked[start : start + n].encode("utf-8")
                slots.add(offset + zlib.crc32(gram) % buckets)
        rows.append(sorted(slots))
    table = np.zeros((len(vocabulary), max(1, *map(len, rows))), dtype="float32")
    for i, slots in enumerate(rows):
        table[i, : len(slots)] = slots
    return table


def _char_ngram_ids(ids: Any, table: Any) -> Any:
    """The n-gram slots of every token of ``ids`` ``[batch, length * k]``, through a frozen
    embedding that holds ``table`` (saved with the model, so ``model.keras`` needs no custom
    object and serving needs no extra input)."""
    import keras
    from keras import ops

    lookup = keras.layers.Embedding(
        table.shape[0], table.shape[1], trainable=False, name="char_ngram_slots"
    )
    slots = lookup(ids)
    lookup.set_weights([table])
    return keras.layers.Reshape((-1,))(ops.cast(slots, "int64"))


def slot_counts(spec: dict[str, Any], bigram_buckets: int) -> Any:
    """``[k, slots]``: train texts of each class holding each token id, then (with
    ``bigram_buckets``) each bigram slot of ``_bigram_ids``, from ``text_input``'s counts."""
    import numpy as np

    counts = np.asarray(spec["class_counts"], dtype="float64")
    if not bigram_buckets:
        return counts
    slots = np.zeros((len(counts), bigram_buckets), dtype="float64")
    pairs = np.asarray(spec.get("pair_counts") or np.zeros((0, 2 + len(counts))), dtype="int64")
    where = (pairs[:, 0] * 1000003 + pairs[:, 1]) % bigram_buckets  # as _bigram_ids hashes
    for c in range(len(counts)):
        np.add.at(slots[c], where, pairs[:, 2 + c])
    return np.concatenate([counts, slots], axis=1)


def log_count_ratios(counts: Any, alpha: float, slots: int) -> Any:
    """``[k, slots]`` float32 feature weights of NBSVM (Wang & Manning 2012): for class ``c`` the
    log-count ratio ``log((p / |p|_1) / (q / |q|_1))`` of each slot, where ``p`` counts the
    train texts of class ``c`` holding it and ``q`` those of the other classes, both smoothed
    by ``alpha``. Two classes need one row (the other is its negative). A slot no train text
    holds (a bigram slot no train pair hashed to) weighs 0: its weights would never be trained
    and would add their random initial values to the texts holding it. Slots past ``counts``
    (character n-grams) keep weight 1."""
    import numpy as np

    counts = np.asarray(counts, dtype="float64")
    rows = counts[1:2] if len(counts) == 2 else counts
    total = counts.sum(axis=0)
    weights = np.ones((len(rows), slots), dtype="float32")
    for i, own in enumerate(rows):
        p = own + alpha
        q = total - own + alpha
        weights[i, : counts.shape[1]] = np.where(
            total > 0, np.log((p / p.sum()) / (q / q.sum())), 0.0
        )
    return weights


def _frozen_row(ids: Any, table: Any, name: str) -> Any:
    """``table`` (``[k, n]``) flattened into a ``[batch, k * n]`` constant through a frozen
    embedding (saved with the weights, like the n-gram table)."""
    import keras
    from keras import ops

    lookup = keras.layers.Embedding(1, table.size, trainable=False, name=name)
    row = lookup(ops.zeros_like(ids[:, :1]))
    lookup.set_weights([table.reshape(1, -1)])
    return keras.layers.Reshape((-1,))(row)


class BowClassifier(Model):
    """A bag-of-words network: multi-hot (or count) vector of the tokens, dense layers, softmax.

    Word order is ignored, except that ``bigram_buckets > 0`` adds the text's adjacent token
    pairs, hashed into that many extra slots of the vector (so "not good" is not "good").
    ``char_ngrams`` (e.g. ``[2, 3, 4, 5]``) adds the character n-grams of each word of the
    vocabulary, hashed into ``char_buckets`` slots, so words that share a stem ("disappoint",
    "disappointing") share features, as in fastText (Bojanowski et al. 2017). On small data sets
    this strong baseline is hard to beat. ``nb_weights`` scales each word's slot by its
    log-count ratio between the classes in the train split (NBSVM, Wang & Manning 2012; the
    counts come from ``text_input`` with ``class_counts: true``); with more than two classes
    the vector is repeated once per class, each copy weighted one class against the rest."""

    name = "bow_classifier"

    mode: Literal["multi_hot", "count"] = param("multi_hot", help="token presence or counts")
    units: list[int] = param([64], help="units of each hidden layer", ge=1)
    dropout: float = param(
        0.5, help="dropout on the input vector and after each hidden layer", ge=0, lt=1
    )
    l2: float = param(0.0, help="L2 weight penalty", ge=0)
    bigram_buckets: int = param(0, help="hash slots for adjacent token pairs (0: words only)", ge=0)
    members: int = param(
        1, help="ensemble: hidden layers and softmax this many times, probabilities averaged", ge=1
    )
    char_ngrams: list[int] = param(
        [], help="character n-gram lengths of each word to add (word vocabularies only)", ge=1
    )
    char_buckets: int = param(20000, help="hash slots for the character n-grams", ge=1)
    nb_weights: bool = param(
        False, help="weight each word by its train log-count ratio (NBSVM; needs class_counts)"
    )
    nb_alpha: float = param(1.0, help="smoothing count of the log-count ratios", gt=0)

    def build(self, inputs: ModelInputs, num_classes: int) -> Any:
        """Return the Keras model for ``inputs`` and ``num_classes`` classes."""
        import keras
        from keras import ops

        name, spec, ids = _ids_input(inputs, self.name)
        size = int(spec["vocab_size"])
        tokens, slots = ids, size
        if self.bigram_buckets:
            tokens = ops.concatenate([ids, _bigram_ids(ids, size, self.bigram_buckets)], axis=1)
            slots = size + self.bigram_buckets
        if self.char_ngrams:
            if spec.get("level", "word") != "word" or "vocabulary" not in spec:
                raise PipelineError(
                    f"{self.name}: char_ngrams needs a word vocabulary (text_vocabulary level: "
                    f"word), got level '{spec.get('level')}'; remove char_ngrams or use words"
                )
            table = char_ngram_table(
                list(spec["vocabulary"]), self.char_ngrams, self.char_buckets, slots
            )
            tokens = ops.concatenate([tokens, _char_ngram_ids(ids, table)], axis=1)
            slots += self.char_buckets
        x = keras.layers.CategoryEncoding(num_tokens=slots, output_mode=self.mode)(tokens)
        if self.mode == "count":
            x = ops.log1p(x)
        x = x * ops.concatenate([ops.zeros([2]), ops.ones([slots - 2])])  # no [PAD]/[UNK] presence
        if self.nb_weights:
            if "class_counts" not in spec:
                raise PipelineError(
                    f"{self.name}: nb_weights needs the train split's class counts: set "
                    f"class_counts: true on the text_input of this trainer"
                )
            counts = slot_counts(spec, self.bigram_buckets)
            ratios = log_count_ratios(counts, self.nb_alpha, slots)
            weights = _frozen_row(ids, ratios, "log_count_ratios")
            x = ops.tile(x, [1, len(ratios)]) * weights
        if self.members == 1:
            if self.dropout > 0:
                x = keras.layers.Dropout(self.dropout)(x)
            out = _head(x, self.units, self.dropout, num_classes, self.l2)
        else:  # members differ by their initial weights and dropout masks (the input's too)
            heads = []
            for i in range(self.members):
                seen = keras.layers.Dropout(self.dropout)(x) if self.dropout > 0 else x
                heads.append(
                    _head(seen, self.units, self.dropout, num_classes, self.l2, f"scores_{i}")
                )
            out = keras.layers.Average(dtype="float32", name="scores")(heads)
        return keras.Model({name: ids}, out, name=self.name)


class RnnClassifier(Model):
    """A recurrent classifier: embedding, LSTM or GRU layers (optionally bidirectional), softmax.

    Padding is masked; the last recurrent layer's final state feeds the dense head."""

    name = "rnn_classifier"

    embedding_dim: int = param(64, help="size of the token embeddings", ge=1)
    cell: Literal["lstm", "gru"] = param("lstm", help="recurrent cell")
    units: list[int] = param(
        [64], help="units of each recurrent layer (one entry per layer)", ge=1, min_items=1
    )
    bidirectional: bool = param(True, help="read the text in both directions")
    dropout: float = param(
        0.3, help="dropout on embeddings, between layers and in the head", ge=0, lt=1
    )
    dense_units: list[int] = param(
        [], help="dense layers between the recurrent part and softmax", ge=1
    )
    l2: float = param(0.0, help="L2 weight penalty", ge=0)

    def build(self, inputs: ModelInputs, num_classes: int) -> Any:
        """Return the Keras model for ``inputs`` and ``num_classes`` classes."""
        import keras

        name, spec, ids = _ids_input(inputs, self.name)
        x = keras.layers.Embedding(
            int(spec["vocab_size"]),
            self.embedding_dim,
            mask_zero=True,
            embeddings_regularizer=regularizer(self.l2),
        )(ids)
        if self.dropout > 0:
            x = keras.layers.SpatialDropout1D(self.dropout)(x)
        layer = keras.layers.LSTM if self.cell == "lstm" else keras.layers.GRU
        for i, units in enumerate(self.units):
            last = i == len(self.units) - 1
            rnn = layer(units, return_sequences=not last, kernel_regularizer=regularizer(self.l2))
            x = keras.layers.Bidirectional(rnn)(x) if self.bidirectional else rnn(x)
            if self.dropout > 0:
                x = keras.layers.Dropout(self.dropout)(x)
        out = _head(x, self.dense_units, self.dropout, num_classes, self.l2)
        return keras.Model({name: ids}, out, name=self.name)


class TransformerClassifier(Model):
    """A Transformer encoder classifier: token + position embeddings, N encoder blocks, pooling.

    Each block is multi-head self-attention (``keras.layers.MultiHeadAttention``, padding
    masked) and a feed-forward layer, each with dropout, a residual connection and layer
    normalisation. The sequence is pooled (masked mean or max) into the dense head."""

    name = "transformer_classifier"

    embed_dim: int = param(64, help="size of token and position embeddings", ge=1)
    num_heads: int = param(2, help="attention heads per block", ge=1)
    ff_dim: int = param(128, help="units of the feed-forward layer of each block", ge=1)
    blocks: int = param(1, help="number of encoder blocks", ge=1)
    dropout: float = param(0.1, help="dropout in the blocks and the head", ge=0, lt=1)
    pooling: Literal["mean", "max"] = param("mean", help="masked mean or max over the tokens")
    dense_units: list[int] = param([], help="dense layers between pooling and softmax", ge=1)
    l2: float = param(0.0, help="L2 weight penalty", ge=0)

    def build(self, inputs: ModelInputs, num_classes: int) -> Any:
        """Return the Keras model for ``inputs`` and ``num_classes`` classes."""
        import keras
        from keras import ops

        name, spec, ids = _ids_input(inputs, self.name)
        max_length = int(spec.get("max_length") or spec["shape"][0])
        mask = ops.not_equal(ids, 0)
        positions = ops.minimum(ops.cumsum(ops.ones_like(ids), axis=1) - 1, max_length - 1)
        x = keras.layers.Embedding(int(spec["vocab_size"]), self.embed_dim)(ids)
        x = x + keras.layers.Embedding(max_length, self.embed_dim)(positions)
        if self.dropout > 0:
            x = keras.layers.Dropout(self.dropout)(x)
        attention_mask = ops.expand_dims(mask, 1)  # [batch, 1, keys]: padding is never attended
        for _ in range(self.blocks):
            attended = keras.layers.MultiHeadAttention(
                self.num_heads, self.embed_dim // self.num_heads, dropout=self.dropout
            )(x, x, attention_mask=attention_mask)
            x = keras.layers.LayerNormalization(epsilon=1e-6)(x + attended)
            ff = keras.layers.Dense(self.ff_dim, activation="relu")(x)
            ff = keras.layers.Dense(self.embed_dim, kernel_regularizer=regularizer(self.l2))(ff)
            if self.dropout > 0:
                ff = keras.layers.Dropout(self.dropout)(ff)
            x = keras.layers.LayerNormalization(epsilon=1e-6)(x + ff)
        if self.pooling == "mean":
            x = _masked_mean(x, mask)
        else:
            x = ops.max(ops.where(ops.expand_dims(mask, -1), x, -1e9), axis=1)
        if self.dropout > 0:
            x = keras.layers.Dropout(self.dropout)(x)
        out = _head(x, self.dense_units, self.dropout, num_classes, self.l2)
        return keras.Model({name: ids}, out, name=self.name)


class LanguageModel(Model):
    """A language model: token embedding, LSTM layers, softmax over the vocabulary per position.

    Character- or word-level (the vocabulary's level). ``build(inputs, vocab_size)`` returns a
    model from ids ``[batch, time]`` to next-token probabilities ``[batch, time, vocab_size]``;
    train it with ``lm_trainer`` on ``lm_input``."""

    name = "language_model"

    embedding_dim: int = param(64, help="size of the token embeddings", ge=1)
    units: list[int] = param(
        [256], help="units of each LSTM layer (one entry per layer)", ge=1, min_items=1
    )
    dropout: float = param(0.1, help="dropout between layers", ge=0, lt=1)

    def build(self, inputs: ModelInputs, num_classes: int) -> Any:
        """Return the Keras model; ``num_classes`` is the vocabulary size."""
        import keras

        name, spec = text_input(inputs, self.name)
        ids = keras.Input(shape=(None,), dtype="int64", name=name)
        x = keras.layers.Embedding(num_classes, self.embedding_dim, mask_zero=True)(ids)
        for units in self.units:
            x = keras.layers.LSTM(units, return_sequences=True)(x)
            if self.dropout > 0:
                x = keras.layers.Dropout(self.dropout)(x)
        out = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="next")(x)
        return keras.Model({name: ids}, out, name=self.name)

"""Encoder-decoder builders: ``build(inputs, num_classes) -> keras.Model`` over token ids.

``inputs`` is what ``seq2seq_input.model_inputs`` returned: ``source`` (ids of the source
tokens, id 0 padding) and ``target`` (the decoder's input: ``[BOS]`` and the target tokens,
teacher forcing). The model returns float32 logits ``[batch, target time, target vocabulary]``
for the next target token at every position.

Every model is two Keras sub-models the decoders call on their own (``beamline_plugins.
seq2seq.decoding``): ``encoder`` (source ids -> memory ``[batch, source time, units]``) and
``decoder`` (``{"source", "memory", "target"}`` -> logits). The decoder is causal (position t
sees target tokens <= t only), so running it on a prefix gives the prefix's logits exactly as
in training. Only built-in Keras layers and ``keras.ops`` are used: ``model.keras`` loads
without custom objects.
"""

from __future__ import annotations

from typing import Any

from beamline import Model, ModelInputs, param
from beamline.errors import PipelineError

ENCODER = "encoder"
DECODER = "decoder"


def _specs(inputs: ModelInputs, model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if "source" not in inputs or "target" not in inputs:
        raise PipelineError(
            f"model '{model}' needs the inputs 'source' and 'target' of seq2seq_input, "
            f"got {list(inputs) or 'none'}"
        )
    return inputs["source"], inputs["target"]


def _ids(name: str) -> Any:
    import keras

    return keras.Input(shape=(None,), dtype="int64", name=name)


def _positions(ids: Any, max_length: int) -> Any:
    from keras import ops

    return ops.minimum(ops.cumsum(ops.ones_like(ids), axis=1) - 1, max_length - 1)


def _embed(ids: Any, vocab_size: int, dim: int, max_length: int, dropout: float) -> Any:
    """Token plus learned position embeddings (the Transformer's input)."""
    import keras

    x = keras.layers.Embedding(vocab_size, dim)(ids)
    x = x + keras.layers.Embedding(max_length, dim)(_positions(ids, max_length))
    return keras.layers.Dropout(dropout)(x) if dropout > 0 else x


def _feed_forward(x: Any, dim: int, ff_dim: int, dropout: float) -> Any:
    import keras

    ff = keras.layers.Dense(ff_dim, activation="relu")(x)
    ff = keras.layers.Dense(dim)(ff)
    ff = keras.layers.Dropout(dropout)(ff) if dropout > 0 else ff
    return keras.layers.LayerNormalization(epsilon=1e-6)(x + ff)


def _attend(query: Any, value: Any, mask: Any, heads: int, dim: int, dropout: float, **kw: Any):
    import keras

    attended = keras.layers.MultiHeadAttention(heads, dim // heads, dropout=dropout)(
        query, value, attention_mask=mask, **kw
    )
    attended = keras.layers.Dropout(dropout)(attended) if dropout > 0 else attended
    return keras.layers.LayerNormalization(epsilon=1e-6)(query + attended)


def _compose(encoder: Any, decoder: Any, name: str) -> Any:
    """The training model: teacher forcing, ``{"source", "target"}`` -> logits."""
    import keras

    source, target = _ids("source"), _ids("target")
    memory = encoder(source)
    logits = decoder({"source": source, "memory": memory, "target": target})
    return keras.Model({"source": source, "target": target}, logits, name=name)


class TransformerSeq2Seq(Model):
    """A Transformer encoder-decoder (Vaswani et al. 2017), post-norm, learned positions.

    Encoder blocks: self-attention (padding masked) and a feed-forward layer; decoder blocks:
    causal self-attention, attention over the encoder's memory, a feed-forward layer; each
    with dropout, a residual connection and layer normalisation."""

    name = "transformer_seq2seq"
    embed_dim: int = param(128, help="model width (embeddings, attention)", ge=8)
    num_heads: int = param(4, help="attention heads", ge=1)
    ff_dim: int = param(256, help="units of each feed-forward layer", ge=1)
    encoder_blocks: int = param(2, help="encoder blocks", ge=1)
    decoder_blocks: int = param(2, help="decoder blocks", ge=1)
    dropout: float = param(0.1, help="dropout in every block", ge=0, lt=1)

    def check(self) -> None:
        """The width divides into the heads."""
        from beamline import ParamError

        if self.embed_dim % self.num_heads:
            raise ParamError(
                "num_heads", f"{self.num_heads} does not divide embed_dim {self.embed_dim}"
            )

    def build(self, inputs: ModelInputs, num_classes: int) -> Any:
        """Return the Keras model; ``num_classes`` is the target vocabulary's size."""
        import keras
        from keras import ops

        source_spec, target_spec = _specs(inputs, self.name)
        d, heads, drop = self.embed_dim, self.num_heads, self.dropout
        source = _ids("source")
        keys = ops.expand_dims(ops.not_equal(source, 0), 1)  # [batch, 1, source]: no padding
        x = _embed(source, int(source_spec["vocab_size"]), d, int(source_spec["max_length"]), drop)
        for _ in range(self.encoder_blocks):
            x = _attend(x, x, keys, heads, d, drop)
            x = _feed_forward(x, d, self.ff_dim, drop)
        encoder = keras.Model(source, x, name=ENCODER)

        source, target = _ids("source"), _ids("target")
        memory = keras.Input((None, d), name="memory")
        keys = ops.expand_dims(ops.not_equal(source, 0), 1)
        y = _embed(target, num_classes, d, int(target_spec["max_length"]), drop)
        for _ in range(self.decoder_blocks):
            y = _attend(y, y, None, heads, d, drop, use_causal_mask=True)
            y = _attend(y, memory, keys, heads, d, drop)
            y = _feed_forward(y, d, self.ff_dim, drop)
        logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(y)
        decoder = keras.Model(
            {"source": source, "memory": memory, "target": target}, logits, name=DECODER
        )
        return _compose(encoder, decoder, self.name)


class LstmAttentionSeq2Seq(Model):
    """An LSTM encoder-decoder with attention (Luong et al. 2015, dot-product scores).

    A bidirectional LSTM encodes the source; the decoder LSTM starts from a projection of the
    encoder's masked mean, attends over the encoder's outputs at every step, and predicts the
    next token from its output and the attended context."""

    name = "lstm_attention"
    embedding_dim: int = param(64, help="size of the token embeddings", ge=1)
    units: int = param(128, help="units of each encoder direction (the decoder has twice)", ge=1)
    encoder_layers: int = param(1, help="bidirectional LSTM layers of the encoder", ge=1)
    dropout: float = param(0.1, help="dropout on embeddings and before the output", ge=0, lt=1)

    def build(self, inputs: ModelInputs, num_classes: int) -> Any:
        """Return the Keras model; ``num_classes`` is the target vocabulary's size."""
        import keras
        from keras import ops

        source_spec, _ = _specs(inputs, self.name)
        width = 2 * self.units
        source = _ids("source")
        x = keras.layers.Embedding(
            int(source_spec["vocab_size"]), self.embedding_dim, mask_zero=True
        )(source)
        x = keras.layers.Dropout(self.dropout)(x) if self.dropout > 0 else x
        for _ in range(self.encoder_layers):
            x = keras.layers.Bidirectional(keras.layers.LSTM(self.units, return_sequences=True))(x)
        encoder = keras.Model(source, x, name=ENCODER)

        source = _ids("source")
        memory = keras.Input((None, width), name="memory")
        target = _ids("target")
        present = ops.cast(ops.expand_dims(ops.not_equal(source, 0), -1), "float32")
        pooled = ops.sum(memory * present, axis=1) / ops.maximum(ops.sum(present, axis=1), 1.0)
        state_h = keras.layers.Dense(width, activation="tanh")(pooled)
        state_c = keras.layers.Dense(width)(pooled)
        y = keras.layers.Embedding(num_classes, self.embedding_dim)(target)
        y = keras.layers.Dropout(self.dropout)(y) if self.dropout > 0 else y
        y = keras.layers.LSTM(width, return_sequences=True)(y, initial_state=[state_h, state_c])
        scores = ops.matmul(y, ops.transpose(memory, (0, 2, 1)))  # [batch, target, source]
        scores = ops.where(ops.transpose(present, (0, 2, 1)) > 0, scores, -1e9)
        context = ops.matmul(ops.softmax(scores, axis=-1), memory)
        z = keras.layers.Dense(width, activation="tanh")(ops.concatenate([y, context], axis=-1))
        z = keras.layers.Dropout(self.dropout)(z) if self.dropout > 0 else z
        logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(z)
        decoder = keras.Model(
            {"source": source, "memory": memory, "target": target}, logits, name=DECODER
        )
        return _compose(encoder, decoder, self.name)

"""Forecaster builders: ``build(inputs, horizon) -> keras.Model`` from raw windows to forecasts.

The input is ``history`` (``[batch, lookback, values]`` raw values, the target column first);
the output ``forecast`` (float32 ``[batch, horizon]``) is in the target's own units. Scaling
happens inside the model with the train split's statistics that ``window_input`` recorded:
every column is taken relative to its last observed value and divided by the spread of its
one-row changes on the train split, and the network's output is scaled back and added to the
target's last value. Relative to the last value, a series with a trend (CO2 rises every year)
looks the same in the test period as in training, which an absolute scale would not.
Only built-in Keras layers and ``keras.ops`` are used: ``model.keras`` loads without custom
objects.
"""

from __future__ import annotations

from typing import Any, Literal

from beamline import Model, ModelInputs, param
from beamline.errors import PipelineError


def _history(inputs: ModelInputs, model: str) -> dict[str, Any]:
    spec = inputs.get("history")
    if spec is None or "change_std" not in spec:
        raise PipelineError(
            f"model '{model}' needs the 'history' input of window_input, got {list(inputs)}"
        )
    return spec


def _scaled(spec: dict[str, Any]) -> tuple[Any, Any, Any]:
    """``(raw input, scaled history, last target value)``."""
    import keras
    from keras import ops

    lookback, values = spec["shape"]
    raw = keras.Input(shape=(lookback, values), dtype="float32", name="history")
    scale = ops.convert_to_tensor(spec["change_std"], dtype="float32")
    last = raw[:, -1:, :]
    scaled = (raw - last) / scale
    return raw, scaled, last[:, 0, int(spec["target_index"])]


def _forecast(raw: Any, features: Any, last: Any, spec: dict[str, Any], horizon: int, name: str):
    import keras

    steps = keras.layers.Dense(horizon, dtype="float32", name="steps")(features)
    scale = float(spec["change_std"][int(spec["target_index"])])
    forecast = last[:, None] + steps * scale
    return keras.Model({"history": raw}, forecast, name=name)


class RnnForecaster(Model):
    """An LSTM or GRU forecaster: recurrent layers over the window, a dense multi-step head.

    The last layer's final state predicts every step of the horizon at once (a direct
    multi-step forecast, no feeding back of its own predictions)."""

    name = "rnn_forecaster"
    cell: Literal["lstm", "gru"] = param("lstm", help="recurrent cell")
    units: list[int] = param([64], help="units of each recurrent layer", ge=1, min_items=1)
    dropout: float = param(0.0, help="dropout before the head", ge=0, lt=1)

    def build(self, inputs: ModelInputs, num_classes: int) -> Any:
        """Return the Keras model; ``num_classes`` is the horizon (values forecast)."""
        import keras

        spec = _history(inputs, self.name)
        raw, x, last = _scaled(spec)
        layer = keras.layers.LSTM if self.cell == "lstm" else keras.layers.GRU
        for i, units in enumerate(self.units):
            x = layer(units, return_sequences=i < len(self.units) - 1)(x)
        x = keras.layers.Dropout(self.dropout)(x) if self.dropout > 0 else x
        return _forecast(raw, x, last, spec, num_classes, self.name)


class CnnForecaster(Model):
    """A 1-D CNN forecaster: causal dilated convolutions over the window, a dense head.

    Each layer doubles the dilation, so a few layers see the whole look-back; the last
    position's features (and a global average) predict every step of the horizon at once."""

    name = "cnn_forecaster"
    filters: list[int] = param([32, 32, 32], help="filters of each layer", ge=1, min_items=1)
    kernel_size: int = param(3, help="kernel width", ge=1)
    dropout: float = param(0.0, help="dropout before the head", ge=0, lt=1)

    def build(self, inputs: ModelInputs, num_classes: int) -> Any:
        """Return the Keras model; ``num_classes`` is the horizon (values forecast)."""
        import keras
        from keras import ops

        spec = _history(inputs, self.name)
        raw, x, last = _scaled(spec)
        for i, filters in enumerate(self.filters):
            x = keras.layers.Conv1D(
                filters, self.kernel_size, padding="causal", dilation_rate=2**i, activation="relu"
            )(x)
        features = ops.concatenate([x[:, -1, :], ops.mean(x, axis=1)], axis=-1)
        features = keras.layers.Dropout(self.dropout)(features) if self.dropout > 0 else features
        return _forecast(raw, features, last, spec, num_classes, self.name)

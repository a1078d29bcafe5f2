"""Sequence to sequence: pair sources, vocabularies, encoder-decoders, beam search, export.

Modules: ``sources`` and ``readers`` (``pairs_csv``, ``cmudict``), ``transforms`` and
``vocabulary`` (``seq2seq_vocabulary``: source and target vocabularies counted in Beam on the
train split), ``tokens`` and ``tf_ops`` (one tokenisation in Python and TensorFlow),
``inputs`` (``seq2seq_input``: teacher forcing), ``models`` (``transformer_seq2seq``,
``lstm_attention``), ``decoding`` (greedy and beam search in the graph), ``trainer``
(``seq2seq_trainer``), ``evaluator`` and ``bleu`` (``seq2seq_evaluator``: exact match, token
error rate, BLEU), ``exporter`` (``seq2seq_exporter``: raw string in, string out). Importing
this package imports neither TensorFlow, Keras nor Beam.
"""

from __future__ import annotations

from typing import Any

from beamline import hookimpl

from .evaluator import Seq2SeqEvaluator
from .exporter import Seq2SeqExporter
from .inputs import Seq2SeqInput
from .models import LstmAttentionSeq2Seq, TransformerSeq2Seq
from .sources import Cmudict, PairsCsv
from .trainer import Seq2SeqTrainer
from .transforms import Seq2SeqVocabulary

__all__ = [
    "Cmudict",
    "LstmAttentionSeq2Seq",
    "PairsCsv",
    "Seq2SeqEvaluator",
    "Seq2SeqExporter",
    "Seq2SeqInput",
    "Seq2SeqTrainer",
    "Seq2SeqVocabulary",
    "TransformerSeq2Seq",
]


@hookimpl
def register_sources(register: Any) -> None:
    """Register ``pairs_csv`` and ``cmudict``."""
    register(PairsCsv)
    register(Cmudict)


@hookimpl
def register_transforms(register: Any) -> None:
    """Register ``seq2seq_vocabulary``."""
    register(Seq2SeqVocabulary)


@hookimpl
def register_input_pipelines(register: Any) -> None:
    """Register ``seq2seq_input``."""
    register(Seq2SeqInput)


@hookimpl
def register_models(register: Any) -> None:
    """Register ``transformer_seq2seq`` and ``lstm_attention``."""
    register(TransformerSeq2Seq)
    register(LstmAttentionSeq2Seq)


@hookimpl
def register_trainers(register: Any) -> None:
    """Register ``seq2seq_trainer``."""
    register(Seq2SeqTrainer)


@hookimpl
def register_evaluators(register: Any) -> None:
    """Register ``seq2seq_evaluator``."""
    register(Seq2SeqEvaluator)


@hookimpl
def register_exporters(register: Any) -> None:
    """Register ``seq2seq_exporter``."""
    register(Seq2SeqExporter)

"""The shipped text pipelines, reduced (few epochs, small models), end to end via beamline.run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from data_paths import PIPELINES

import beamline
from beamline.examples import iter_examples
from beamline_plugins.text.tokens import tokenize


@pytest.fixture(autouse=True)
def _importable_support(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))


def _run(name: str, folder: Path, overrides: dict) -> beamline.Run:
    overrides = {"steps.validate.schema": str(folder / f"{name}.schema.pbtxt"), **overrides}
    result = beamline.run(PIPELINES / f"{name}.yaml", overrides, runs_dir=folder / "runs")
    assert [r.status for r in result.records] == ["ran"] * 5
    return result.run


@pytest.fixture(scope="module")
def sms_run(tmp_path_factory: pytest.TempPathFactory) -> beamline.Run:
    """pipelines/sms_spam.yaml on the full data with a small GRU trained for two epochs."""
    return _run(
        "sms_spam",
        tmp_path_factory.mktemp("sms"),
        {
            "steps.train.model": {"component": "rnn_classifier", "cell": "gru", "units": [16],
                                  "embedding_dim": 16, "bidirectional": False},
            "steps.train.epochs": 2,
            "steps.evaluate.thresholds": {"accuracy": 0.9},
        },
    )  # fmt: skip


def _split_texts(examples: beamline.Artifact) -> dict[str, list[str]]:
    return {
        split: [e["text"][0].decode("utf-8") for e in iter_examples(examples, split)]
        for split in ("train", "eval", "test")
    }


@pytest.mark.slow
def test_no_sms_text_appears_in_two_splits(sms_run: beamline.Run) -> None:
    examples = sms_run.artifact("ingest")
    texts = _split_texts(examples)
    train, eval_, test = (set(texts[s]) for s in ("train", "eval", "test"))
    assert not train & test and not train & eval_ and not eval_ & test
    # the raw file has hundreds of exact duplicates: dropped before the split
    assert examples.counts["rejected"] > 300
    assert examples.counts["read"] == 4489
    assert examples.counts["read"] == examples.counts["written"] + examples.counts["rejected"]
    assert all(t == " ".join(t.lower().split()) for t in texts["test"])  # normalised text


@pytest.mark.slow
def test_vocabulary_is_computed_from_the_train_split_only(sms_run: beamline.Run) -> None:
    examples = sms_run.artifact("ingest")
    vocab = json.loads(examples.file("assets", "vocabulary", "text.json").read_text())
    assert vocab["records"] == examples.counts["written_train"]
    texts = _split_texts(examples)
    train_counts: dict[str, int] = {}
    for text in texts["train"]:
        for token in tokenize(text):
            train_counts[token] = train_counts.get(token, 0) + 1
    kept = set(vocab["tokens"][2:])
    assert kept == {t for t, c in train_counts.items() if c >= 2}  # max_tokens not reached
    unseen = {t for s in ("eval", "test") for x in texts[s] for t in tokenize(x)} - set(
        train_counts
    )
    assert unseen and not unseen & kept


@pytest.mark.slow
def test_exported_model_takes_raw_strings_and_matches_the_evaluator(sms_run: beamline.Run) -> None:
    import numpy as np
    import tensorflow as tf

    predictions = [
        json.loads(line)
        for line in sms_run.artifact("evaluate").file("predictions.jsonl").read_text().splitlines()
    ]
    texts = [p["ids"]["text"] for p in predictions]
    assert len(texts) == sms_run.artifact("ingest").counts["written_test"]
    export = sms_run.artifact("export")
    assert json.loads(export.file("export.json").read_text())["inputs"] == {"text": "text"}
    serve = tf.saved_model.load(str(export.file("saved_model"))).signatures["serving_default"]
    out = serve(text=tf.constant(texts))
    expected = np.array([p["scores"] for p in predictions])
    np.testing.assert_allclose(out["scores"].numpy(), expected, atol=1e-5)
    labels = [x.decode() for x in out["label"].numpy()]
    assert labels == [p["predicted"] for p in predictions]
    metrics = json.loads(sms_run.artifact("evaluate").file("metrics.json").read_text())
    assert metrics["accuracy"] > 0.9
    # raw input is lowercased by the model exactly as ingest lowercased the training text
    shout = serve(text=tf.constant([texts[0].upper(), texts[0]]))["scores"].numpy()
    np.testing.assert_allclose(shout[0], shout[1], atol=1e-6)
    # ... and NFKC-normalised: fullwidth letters and a ligature read as the ingested ASCII
    wide = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in "FREE offer, call now")
    same = serve(text=tf.constant([wide.replace("ff", "\ufb00"), "free offer, call now"]))
    np.testing.assert_allclose(same["scores"].numpy()[0], same["scores"].numpy()[1], atol=1e-6)


@pytest.mark.slow
def test_sentiment_transformer_with_length_buckets_runs_end_to_end(tmp_path: Path) -> None:
    import tensorflow as tf

    run = _run(
        "sentiment",
        tmp_path,
        {
            "steps.train.input": {"component": "text_input", "max_length": 48,
                                  "bucket_boundaries": [8, 16, 32]},
            "steps.train.model": {"component": "transformer_classifier", "embed_dim": 16,
                                  "num_heads": 2, "ff_dim": 32},
            "steps.train.epochs": 3,
            "steps.evaluate.thresholds": {"accuracy": 0.6},
        },
    )  # fmt: skip
    info = json.loads(run.artifact("train").file("model.json").read_text())
    assert info["inputs"]["text"]["shape"] == [None]
    serve = tf.saved_model.load(str(run.artifact("export").file("saved_model")))
    out = serve.signatures["serving_default"](
        text=tf.constant(["An absolute joy, I loved it!", "Terrible. Broke after a day."])
    )
    assert out["scores"].shape == (2, 2)


@pytest.mark.slow
def test_vocabulary_is_recomputed_identically_when_the_asset_is_missing(
    sms_run: beamline.Run, tmp_path: Path
) -> None:
    import shutil

    from beamline_plugins.text.vocabulary import load_vocabulary

    examples = sms_run.artifact("ingest")
    saved = json.loads(examples.file("assets", "vocabulary", "text.json").read_text())
    copy = tmp_path / "ingest"
    shutil.copytree(examples.path, copy)
    shutil.rmtree(copy / "assets")
    assert load_vocabulary(beamline.Artifact.open(copy), "text") == saved


@pytest.mark.slow
def test_predict_cli_takes_text_strings_and_text_files(sms_run: beamline.Run, tmp_path: Path):
    import subprocess
    import sys

    predictions = [
        json.loads(line)
        for line in sms_run.artifact("evaluate").file("predictions.jsonl").read_text().splitlines()
    ]
    first = predictions[0]
    text_file = tmp_path / "message.txt"
    text_file.write_text(first["ids"]["text"], encoding="utf-8")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "beamline",
            "predict",
            str(sms_run.artifact("export").path),
            str(text_file),
            "--text",
            first["ids"]["text"],
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert [r["input"] for r in results] == [str(text_file), first["ids"]["text"]]
    assert [r["label"] for r in results] == [first["predicted"]] * 2
    classes = list(results[0]["scores"])
    for result in results:
        assert [round(result["scores"][c], 4) for c in classes] == [
            round(s, 4) for s in first["scores"]
        ]
    missing = subprocess.run(
        [sys.executable, "-m", "beamline", "predict", str(sms_run.artifact("export").path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "--text STRING" in missing.stderr


@pytest.mark.slow
def test_language_model_trains_mirrored_over_two_logical_cpus(tmp_path: Path) -> None:
    import subprocess
    import sys

    from keras_support import python_env

    overrides = {
        "steps.validate.schema": str(tmp_path / "text_generation.schema.pbtxt"),
        "steps.train.model": {"component": "language_model", "embedding_dim": 16, "units": [32]},
        "steps.train.epochs": 2,
        "steps.train.strategy": "mirrored",
        "steps.train.cpu_devices": 2,
        "steps.evaluate.samples": 1,
        "steps.evaluate.sample_length": 20,
        "steps.evaluate.thresholds": {},
    }
    runs = tmp_path / "runs"
    file = PIPELINES / "text_generation.yaml"
    script = (
        "import beamline, tensorflow as tf\n"
        f"beamline.run({str(file)!r}, {overrides!r}, runs_dir={str(runs)!r})\n"
        "print('logical cpus', len(tf.config.list_logical_devices('CPU')))\n"
    )
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, env=python_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "logical cpus 2" in done.stdout
    run = beamline.open_run("text_generation", runs_dir=runs)
    history = json.loads(run.artifact("train").file("report", "history.json").read_text())
    losses = [e["loss"] for e in history["epochs"]]
    assert len(losses) == 2 and losses[1] < losses[0]
    metrics = json.loads(run.artifact("evaluate").file("metrics.json").read_text())
    assert metrics["perplexity"] < metrics["unigram_perplexity"]


def test_char_ngrams_give_words_with_a_common_stem_shared_slots(tmp_path: Path) -> None:
    import keras
    import numpy as np

    from beamline_plugins.text.models import BowClassifier

    vocabulary = ["[PAD]", "[UNK]", "good", "goods", "bad"]
    spec = {"modality": "text", "shape": [3], "max_length": 3, "level": "word"}
    inputs = {"text": {**spec, "vocab_size": 5, "vocabulary": vocabulary}}
    model = BowClassifier(units=[4], char_ngrams=[3], char_buckets=1000).build(inputs, 2)
    encoding = next(x for x in model.layers if isinstance(x, keras.layers.CategoryEncoding))
    ids = np.array([[2, 0, 0], [3, 1, 0], [4, 0, 0], [0, 1, 0]], dtype="int64")
    vectors = np.asarray(keras.Model(model.inputs, encoding.output)({"text": ids}))
    grams = vectors[:, 5:]  # the word slots come first
    # <go goo ood od> and <go goo ood ods ds>: three shared; <ba bad ad>: none (no collision)
    assert grams.sum(axis=1).tolist() == [4, 5, 3, 0]  # padding and [UNK] have no n-grams
    assert (grams[0] * grams[1]).sum() == 3 and (grams[0] * grams[2]).sum() == 0
    path = tmp_path / "model.keras"
    model.save(path)  # the n-gram table travels in the weights: no custom objects
    loaded = keras.saving.load_model(path, compile=False)
    np.testing.assert_allclose(loaded({"text": ids}), model({"text": ids}), rtol=1e-6)
    with pytest.raises(beamline.PipelineError, match="char_ngrams needs a word vocabulary"):
        BowClassifier(char_ngrams=[3]).build({"text": {**inputs["text"], "level": "char"}}, 2)


@pytest.mark.slow
def test_class_counts_count_train_texts_per_class_and_token(sms_run: beamline.Run) -> None:
    from beamline_plugins.text.inputs import TextInput

    examples = sms_run.artifact("ingest")
    inputs = TextInput(max_length=64, class_counts=True).model_inputs(examples)
    spec = inputs["text"]
    index = {token: i for i, token in enumerate(spec["vocabulary"])}
    classes = json.loads(examples.file("features.json").read_text())["classes"]
    expected = [[0] * spec["vocab_size"] for _ in classes]
    pairs: dict[tuple[int, int], list[int]] = {}
    for example in iter_examples(examples, "train"):
        ids = [index.get(t, 1) for t in tokenize(example["text"][0].decode("utf-8"))][:64]
        label = classes.index(example["label"][0].decode("utf-8"))
        for i in set(ids) | ({0} if len(ids) < 64 else set()):
            expected[label][i] += 1
        for pair in set(zip(ids, ids[1:], strict=False)):
            pairs.setdefault(pair, [0] * len(classes))[label] += 1
    assert spec["class_counts"] == expected
    assert spec["pair_counts"] == [[*pair, *pairs[pair]] for pair in sorted(pairs)]
    assert sum(spec["class_counts"][0]) > sum(spec["class_counts"][1]) > 0  # ham, then spam


def test_nb_weights_scale_each_word_by_its_log_count_ratio(tmp_path: Path) -> None:
    import keras
    import numpy as np

    from beamline_plugins.text.models import BowClassifier, slot_counts

    vocabulary = ["[PAD]", "[UNK]", "good", "bad", "the"]
    counts = [[9, 0, 1, 6, 5], [9, 0, 7, 1, 4]]  # texts of class 0 and 1 holding each token
    spec = {"modality": "text", "shape": [3], "max_length": 3, "level": "word"}
    inputs = {"text": {**spec, "vocab_size": 5, "vocabulary": vocabulary, "class_counts": counts}}
    model = BowClassifier(units=[4], nb_weights=True, dropout=0).build(inputs, 2)
    first = next(x for x in model.layers if isinstance(x, keras.layers.Dense))
    ids = np.array([[2, 4, 0], [3, 0, 0]], dtype="int64")
    vectors = np.asarray(keras.Model(model.inputs, first.input)({"text": ids}))
    p, q = np.array(counts[1]) + 1.0, np.array(counts[0]) + 1.0
    ratio = np.log((p / p.sum()) / (q / q.sum()))
    np.testing.assert_allclose(vectors, [[0, 0, ratio[2], 0, ratio[4]], [0, 0, 0, ratio[3], 0]])
    assert ratio[2] > 0 > ratio[3]  # "good" leans to class 1, "bad" to class 0
    path = tmp_path / "model.keras"
    model.save(path)  # the ratios travel in the weights: no custom objects
    loaded = keras.saving.load_model(path, compile=False)
    np.testing.assert_allclose(loaded({"text": ids}), model({"text": ids}), rtol=1e-6)
    pairs = {**inputs["text"], "pair_counts": [[2, 4, 0, 3], [4, 3, 2, 0]]}
    slots = slot_counts(pairs, 8)  # the bigram slots as the model hashes them: 2 and 7
    assert slots.shape == (2, 13) and slots[:, :5].tolist() == counts
    assert slots[:, 5 + 2].tolist() == [0, 3] and slots[:, 5 + 7].tolist() == [2, 0]
    bigrams = BowClassifier(units=[4], bigram_buckets=8, nb_weights=True, dropout=0)
    model = bigrams.build({"text": pairs}, 2)
    first = next(x for x in model.layers if isinstance(x, keras.layers.Dense))
    vector = np.asarray(keras.Model(model.inputs, first.input)({"text": ids[:1]}))[0]
    assert np.flatnonzero(vector).tolist() == [2, 4, 5 + 2] and vector[7] > 0  # "good the"
    three = BowClassifier(units=[4], nb_weights=True).build(
        {"text": {**inputs["text"], "class_counts": [*counts, [1, 0, 1, 1, 1]]}}, 3
    )
    assert three.layers[-1].output.shape[-1] == 3  # one weighted copy per class, one against all
    with pytest.raises(beamline.PipelineError, match="class_counts: true"):
        BowClassifier(nb_weights=True).build({"text": {**spec, "vocab_size": 5}}, 2)


def _member_kernel_steps(model, independent: bool) -> tuple[np.ndarray, np.ndarray]:
    """Member 0's output-kernel change after one SGD step, with member 1 as built and with
    member 1's kernel moved."""
    import keras
    import tensorflow as tf

    from beamline_plugins.training.layers import members_view
    from beamline_plugins.training.loop import make_loss, make_steps

    members = members_view(model) if independent else None
    loss = make_loss("crossentropy", 2, 0.0)
    optimizer = keras.optimizers.SGD(0.5)
    strategy = tf.distribute.get_strategy()
    step, _ = make_steps(strategy, model, optimizer, loss, "classification", members)
    ids = tf.constant([[3, 4, 5, 0], [6, 2, 0, 0]], dtype=tf.int64)
    batch = ({"text": ids}, tf.constant([0, 1]))
    start = [w.copy() for w in model.get_weights()]
    kernel, other = model.get_layer("scores_0").kernel, model.get_layer("scores_1").kernel
    changes = []
    for moved in (False, True):
        model.set_weights(start)
        if moved:
            other.assign(other.numpy() + np.array([2.0, -2.0]))  # moves member 1's softmax
        before = kernel.numpy().copy()
        step(batch)
        changes.append(kernel.numpy() - before)
    model.set_weights(start)
    return changes[0], changes[1]


def test_member_losses_train_each_member_on_its_own_loss() -> None:
    from beamline_plugins.text.models import BowClassifier
    from beamline_plugins.training.layers import members_view

    inputs = {"text": {"modality": "text", "shape": [4], "vocab_size": 12, "max_length": 4}}
    model = BowClassifier(units=[], dropout=0.0, members=2).build(inputs, 2)
    assert members_view(BowClassifier(units=[]).build(inputs, 2)) is None
    # on their own losses, member 0's update ignores member 1; through the average's loss not
    alone, beside_moved = _member_kernel_steps(model, independent=True)
    np.testing.assert_allclose(beside_moved, alone, rtol=1e-5)
    joint, joint_moved = _member_kernel_steps(model, independent=False)
    assert not np.allclose(joint_moved, joint, rtol=1e-3)

"""The ``gan_evaluator`` step: score generated images with a classifier trained on real ones.

Artifact::

    metrics.json                  the scores (``generative.scores``) of the generated
                                  images and of two baselines: real images of a split and
                                  uniform random-noise images; for a conditional GAN also
                                  ``label_agreement`` (classifier agrees with the class asked for)
    blessing.json                 {"blessed": bool, "reasons": [...], "thresholds": {...}}
    report/generated.png          generated images titled with the predicted class, probability
    report/class_histogram.png    predicted-class shares: generated, real, noise

Every image set takes the classifier's own preprocessing: generated and noise images are
encoded as 8-bit PNG files and decoded by the classifier's input pipeline's serving function
(the one its exported model uses), real images come from its ``dataset``.
"""

from __future__ import annotations

from typing import Any

from beamline import Evaluator, Examples, Input, StepContext, StepResult, TrainedModel, param
from beamline.artifacts import Artifact, write_json_atomic
from beamline.errors import PipelineError

from .scores import SCORES

METRICS_FILE = "metrics.json"
BLESSING_FILE = "blessing.json"
BASELINES = ("real", "noise")


class GanEvaluator(Evaluator):
    """Score a GAN's samples with a classifier: confidence, class evenness, coverage, IS.

    Generates ``samples`` images and classifies them with a ``keras_trainer`` model of this
    pipeline; compares with real images of ``split`` and random-noise images. Blessed when every
    threshold holds (minimums) and, with ``require_above_noise``, when the generated images are
    classified more confidently than noise."""

    name = "gan_evaluator"
    generator: Input[TrainedModel] = param(help="the gan_trainer step whose generator to score")
    classifier: Input[TrainedModel] = param(
        help="a keras_trainer step trained on the same kind of images"
    )
    examples: Input[Examples] | None = param(
        None, help="examples of the real baseline; default: the classifier's training examples"
    )
    split: str = param("test", help="split of the real baseline")
    samples: int = param(1000, help="generated (and noise, and at most real) images scored", ge=1)
    seed: int = param(1, help="seed of the generator's noise and the noise baseline")
    batch_size: int = param(256, help="images per classifier batch", ge=1)
    grid_size: int = param(
        10, help="the labelled report grid is grid_size x grid_size images", ge=1
    )
    thresholds: dict[str, float] = param(
        {}, help="minimum per metric, e.g. {confidence: 0.8, evenness: 0.9, coverage: 1.0}"
    )
    require_above_noise: bool = param(
        True, help="also require generated confidence above the noise baseline's"
    )

    def run(self, ctx: StepContext) -> StepResult:
        """Generate, classify, score against the baselines, bless, and write the artifact."""
        import numpy as np

        from beamline_plugins.training.artifact import load_keras_model, trained_model

        from .images import plot_class_histograms, plot_labelled_grid
        from .scores import score
        from .trainer import generate, load_generator

        generator, gan = load_generator(ctx.input("generator"))
        artifact, info, pipeline = trained_model(ctx, "classifier")
        classifier = load_keras_model(artifact)
        classes = [str(c) for c in info["classes"]]
        examples = self._examples(ctx, artifact)
        classify = _Classifier(classifier, pipeline, info, self.batch_size)

        images, asked = generate(generator, gan, self.samples, self.seed)
        probs = {"generated": classify.images(images)}
        noise = np.random.default_rng(self.seed + 1).random(images.shape).astype(np.float32)
        probs["noise"] = classify.images(noise)
        probs["real"] = classify.split(examples, self.split, self.samples)

        results = {name: score(p) for name, p in probs.items()}
        metrics: dict[str, Any] = {k: results["generated"][k] for k in SCORES}
        for baseline in BASELINES:
            metrics.update({f"{baseline}_{k}": results[baseline][k] for k in SCORES})
        if asked is not None and gan.get("classes") == classes:
            metrics["label_agreement"] = float((probs["generated"].argmax(1) == asked).mean())
        details = {
            "metrics": metrics,
            "sets": results,
            "classes": classes,
            "samples": self.samples,
            "split": self.split,
            "generator_step": ctx.input("generator").step,
            "classifier_step": artifact.step,
            "examples_step": examples.step,
        }
        write_json_atomic(ctx.output_dir / METRICS_FILE, details)
        blessing = self._bless(metrics)
        write_json_atomic(ctx.output_dir / BLESSING_FILE, blessing)

        report = ctx.output_dir / "report"
        shown = min(len(images), self.grid_size**2)
        generated = probs["generated"][:shown]
        plot_labelled_grid(
            images[:shown],
            [classes[i] for i in generated.argmax(1)],
            generated.max(1),
            report / "generated.png",
            f"generated: confidence {metrics['confidence']:.3f}, "
            f"evenness {metrics['evenness']:.3f} (real {metrics['real_confidence']:.3f}, "
            f"noise {metrics['noise_confidence']:.3f})",
            columns=self.grid_size,
        )
        plot_class_histograms(
            {name: results[name]["histogram"] for name in ("generated", "real", "noise")},
            classes,
            report / "class_histogram.png",
        )
        verdict = (
            "blessed" if blessing["blessed"] else "not blessed: " + "; ".join(blessing["reasons"])
        )
        ctx.log(verdict)
        flat = {k: float(v) for k, v in metrics.items()}
        flat["blessed"] = 1.0 if blessing["blessed"] else 0.0
        summary = (
            f"confidence {metrics['confidence']:.3f} (real {metrics['real_confidence']:.3f}, "
            f"noise {metrics['noise_confidence']:.3f}) evenness {metrics['evenness']:.3f} "
            f"coverage {metrics['coverage']:.2f} ({verdict})"
        )
        return StepResult(metrics=flat, summary=summary)

    def _examples(self, ctx: StepContext, classifier: Artifact) -> Artifact:
        """The examples of the real baseline: ``examples``, else the classifier's own."""
        if self.examples:
            return ctx.input("examples")
        # The classifier's artifact names the step it was trained on (not the live file).
        upstream = classifier.meta.get("inputs", {}).get("examples", {}).get("step")
        if not upstream:
            raise PipelineError(
                f"gan_evaluator: step '{classifier.step}' names no examples; set 'examples:'"
            )
        return ctx.run.artifact(str(upstream))

    def _bless(self, metrics: dict[str, Any]) -> dict[str, Any]:
        reasons = []
        for name, bound in self.thresholds.items():
            if name not in metrics:
                raise PipelineError(
                    f"gan_evaluator: thresholds: unknown metric '{name}' "
                    f"(metrics: {', '.join(metrics)})"
                )
            if metrics[name] < bound:
                reasons.append(f"{name} {metrics[name]:.4f} < {bound}")
        if self.require_above_noise and metrics["confidence"] <= metrics["noise_confidence"]:
            reasons.append(
                f"confidence {metrics['confidence']:.4f} not above the noise baseline's "
                f"{metrics['noise_confidence']:.4f}"
            )
        return {"blessed": not reasons, "reasons": reasons, "thresholds": dict(self.thresholds)}


class _Classifier:
    """A trained classifier with the preprocessing of its input pipeline."""

    def __init__(self, model: Any, pipeline: Any, info: dict[str, Any], batch_size: int) -> None:
        self.model = model
        self.pipeline = pipeline
        self.info = info
        self.batch_size = batch_size
        (self.feature,) = info["inputs"]
        _, self.preprocess = pipeline.serving(info["inputs"])

    def images(self, images: Any) -> Any:
        """Class probabilities of float images in [0, 1], passed through PNG and serving."""
        import numpy as np
        import tensorflow as tf

        from .images import encode_png

        out = []
        for begin in range(0, len(images), self.batch_size):
            encoded = tf.constant(encode_png(images[begin : begin + self.batch_size]))
            features = self.preprocess({self.feature: encoded})
            out.append(np.asarray(self.model(features, training=False), dtype=np.float64))
        return np.concatenate(out)

    def split(self, examples: Artifact, split: str, limit: int) -> Any:
        """Class probabilities of up to ``limit`` real images of ``split``."""
        import numpy as np

        ds = self.pipeline.dataset(
            examples,
            split,
            inputs=self.info["inputs"],
            training=False,
            batch_size=self.batch_size,
        )
        out, seen = [], 0
        for features, _ in ds:
            out.append(np.asarray(self.model(features, training=False), dtype=np.float64))
            seen += len(out[-1])
            if seen >= limit:
                break
        if not out:
            raise PipelineError(f"gan_evaluator: split '{split}' of '{examples.step}' is empty")
        return np.concatenate(out)[:limit]

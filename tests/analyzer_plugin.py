"""A transform with an analyzer, for testing that analyzers see the train split only."""

from __future__ import annotations

import json

from beamline import Transform, hookimpl, param


class CountLabels(Transform):
    """Passes records through; its analyzer counts the labels of the train split."""

    name = "count_labels"
    asset: str = param("label_counts.json", help="where the counts go under assets/")

    def stage(self, ctx):
        import apache_beam as beam

        def expand(records):
            return {"main": records, "rejected": records | beam.Filter(lambda r: False)}

        return beam.ptransform_fn(expand)()

    def analyze(self, ctx):
        import apache_beam as beam

        asset = self.asset

        def expand(records):
            return (
                records
                | beam.Map(lambda r: r["label"])
                | beam.combiners.Count.PerElement()
                | beam.combiners.ToList()
                | beam.Map(lambda pairs: (asset, json.dumps(dict(sorted(pairs))).encode()))
            )

        return beam.ptransform_fn(expand)()


@hookimpl
def register_transforms(register):
    register(CountLabels)

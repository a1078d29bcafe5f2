"""Concurrent predict requests run as one batch, after a bounded wait.

A request's examples join a pending list. The batch runner takes the oldest request and waits
until ``max_batch`` examples are pending or ``max_wait`` seconds have passed since that request
arrived (TF Serving's ``max_batch_size`` and ``batch_timeout_micros``), then waits for the
inference thread to be free and takes every pending request of the same model version, up to
``max_batch`` examples (a request larger than that runs alone). The batch runs in an inference
thread beside the event loop (``threads`` of them, 1 by default: TensorFlow spreads one call
over the cores itself), which keeps collecting the next batch meanwhile; each request gets its
own rows back. When the batch fails because one
example cannot be read, every request of it is run on its own, so only the request with the
bad example is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .loader import LoadedVersion, UnreadableInput


@dataclass
class _Pending:
    model: LoadedVersion
    columns: dict[str, np.ndarray]
    rows: int
    arrived: float
    future: asyncio.Future = field(repr=False)


class Batcher:
    """Batch predict calls made from one event loop; ``predict`` is what a request awaits.

    ``threads`` batches may run at once (each in its own inference thread)."""

    def __init__(
        self,
        *,
        max_batch: int = 32,
        max_wait: float = 0.005,
        threads: int = 1,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._on_batch = on_batch
        self._pending: list[_Pending] = []
        self._wake: asyncio.Event | None = None
        self._runner: asyncio.Task | None = None
        self._slots = asyncio.Semaphore(threads)
        self._running: set[asyncio.Task] = set()
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="predict")

    async def predict(
        self, model: LoadedVersion, columns: dict[str, np.ndarray], rows: int
    ) -> dict[str, np.ndarray]:
        """The outputs of ``model`` for one request's examples (``UnreadableInput`` names the
        request's row that the model could not read)."""
        loop = asyncio.get_running_loop()
        if self._runner is None or self._runner.done():
            self._wake = asyncio.Event()
            self._runner = loop.create_task(self._run(), name="batcher")
        future = loop.create_future()
        self._pending.append(_Pending(model, columns, rows, loop.time(), future))
        assert self._wake is not None
        self._wake.set()
        return await future

    def close(self) -> None:
        """Stop the runner and the inference thread."""
        if self._runner is not None:
            self._runner.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            first = self._pending[0]
            deadline = first.arrived + self.max_wait
            while self._pending_rows(first.model) < self.max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), remaining)
                except TimeoutError:
                    break
            await self._slots.acquire()  # a free inference thread; meanwhile more arrive
            batch = self._take(first.model)
            task = loop.create_task(self._dispatch(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _dispatch(self, batch: list[_Pending]) -> None:
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._predict, batch
            )
            self._deliver(batch, results)
        except Exception as exc:  # the batch itself failed: every request gets the error
            self._deliver(batch, [exc] * len(batch))
        finally:
            self._slots.release()

    def _deliver(self, batch: list[_Pending], results: list[Any]) -> None:
        for item, result in zip(batch, results, strict=True):
            if item.future.done():  # the client went away
                continue
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)

    def _pending_rows(self, model: LoadedVersion) -> int:
        return sum(p.rows for p in self._pending if p.model is model)

    def _take(self, model: LoadedVersion) -> list[_Pending]:
        batch, rest, rows = [], [], 0
        for item in self._pending:
            if item.model is model and (not batch or rows + item.rows <= self.max_batch):
                batch.append(item)
                rows += item.rows
            else:
                rest.append(item)
        self._pending = rest
        return batch

    def _predict(self, batch: list[_Pending]) -> list[Any]:
        """Run in the inference thread: one call for the batch, or per request on failure."""
        model = batch[0].model
        if self._on_batch:
            self._on_batch(sum(item.rows for item in batch))
        if len(batch) == 1:
            item = batch[0]
            try:
                return [model.predict_rows(item.columns, item.rows)]
            except UnreadableInput as exc:
                return [exc]
        merged = {
            name: np.concatenate([item.columns[name] for item in batch]) for name in model.inputs
        }
        try:
            outputs = model.predict(merged)
        except UnreadableInput:
            results: list[Any] = []
            for item in batch:
                try:
                    results.append(model.predict_rows(item.columns, item.rows))
                except UnreadableInput as exc:
                    results.append(exc)
            return results
        results, start = [], 0
        for item in batch:
            results.append({n: a[start : start + item.rows] for n, a in outputs.items()})
            start += item.rows
        return results

"""Dynamic micro-batching: requests that arrive together share one call of the network.

The first waiting request opens a batch; requests that arrive within `max_wait_ms` join it until it holds
`max_batch` examples (as Ray Serve's @serve.batch, 10 / 10 ms by default, and TorchServe's batch_size /
max_batch_delay do). Unlike those, it waits only while other requests are on their way (being read and
parsed: `arriving`): a lone client is not made to wait `max_wait_ms` for company that cannot come.
The network runs in one worker thread, so the event loop keeps accepting requests
while it computes, and the next batch fills meanwhile. A request larger than `max_batch` is cut into
batches of `max_batch`: no network call ever takes more.

Backpressure: at most `max_queue` examples wait; a request that would pass it is refused at once (`Full`:
the server answers 503 with Retry-After) rather than queued behind work it could not wait for. A request
whose client gave up (its deadline passed, it hung up) leaves cancelled futures, which no batch computes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

Inputs = dict[str, torch.Tensor]


@dataclass
class _Waiting:
    inputs: Inputs
    size: int
    done: asyncio.Future[torch.Tensor]
    queued: bool = True  # counted in `waiting`: not yet taken into a batch nor withdrawn


class Full(Exception):
    """The queue holds `max_queue` examples: come back later."""


class Batcher:
    def __init__(
        self, run: Callable[[Inputs], torch.Tensor], max_batch: int, max_wait_ms: float,
        on_batch: Callable[[int], None] = lambda n: None, max_queue: int = 2048,
    ) -> None:  # fmt: skip
        self.run, self.max_batch, self.max_wait = run, max_batch, max_wait_ms / 1000
        self.on_batch, self.max_queue = on_batch, max_queue
        self.waiting = 0  # examples queued, not yet taken into a batch
        self.queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="sw2-model")
        self.task: asyncio.Task[None] | None = None
        self.arriving = 0  # requests being read and parsed that will join a batch: worth waiting for

    @contextlib.contextmanager
    def arrival(self) -> Iterator[None]:
        """Around reading and parsing a request that will call the batcher: the batch waits for it."""
        self.arriving += 1
        try:
            yield
        finally:
            self.arriving -= 1

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.thread.shutdown(wait=True)

    async def __call__(self, inputs: Inputs) -> torch.Tensor:
        """The network's outputs for `inputs` (one request's examples), computed in shared batches of at most
        `max_batch`; `Full` if the queue cannot take them. Cancelling the call withdraws what is not computed."""
        n = len(next(iter(inputs.values())))
        if self.waiting + n > self.max_queue:
            raise Full
        loop = asyncio.get_running_loop()
        parts = []
        for i in range(0, n, self.max_batch):
            part = {k: v[i : i + self.max_batch] for k, v in inputs.items()}
            parts.append(_Waiting(part, len(next(iter(part.values()))), loop.create_future()))
        for w in parts:
            self.queue.put_nowait(w)
        self.waiting += n
        try:
            outputs = [await w.done for w in parts]
        finally:
            for w in parts:
                w.done.cancel()  # no-op where done; else no batch computes it
                self._dequeued(w)
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    def _dequeued(self, w: _Waiting) -> None:
        if w.queued:
            w.queued = False
            self.waiting -= w.size

    def _live(self, w: _Waiting) -> bool:
        """Whether the caller of a part just taken off the queue still waits (then it leaves the count)."""
        if w.done.done():
            return False
        self._dequeued(w)
        return True

    async def _next(self) -> _Waiting:
        """The next queued request part whose caller still waits."""
        while not self._live(w := await self.queue.get()):
            pass
        return w

    def _next_nowait(self) -> _Waiting:
        while not self._live(w := self.queue.get_nowait()):
            pass
        return w

    async def _gather(self) -> list[_Waiting]:
        batch = [await self._next()]
        size, loop = batch[0].size, asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while size < self.max_batch:
            try:
                nxt = self._next_nowait()
            except asyncio.QueueEmpty:
                left = deadline - loop.time()
                if left <= 0 or self.arriving == 0:
                    break
                try:
                    nxt = await asyncio.wait_for(self._next(), left)
                except TimeoutError:
                    break
            if size + nxt.size > self.max_batch:
                self.queue.put_nowait(nxt)  # it opens the next batch (the queue keeps no order: fine for a server)
                nxt.queued, self.waiting = True, self.waiting + nxt.size
                break
            batch.append(nxt)
            size += nxt.size
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            try:
                joined = join([w.inputs for w in batch])
                outputs = await loop.run_in_executor(self.thread, self.run, joined)
                self.on_batch(sum(w.size for w in batch))
            except Exception as err:  # every request of the batch gets the error; the loop goes on
                for w in batch:
                    if not w.done.done():
                        w.done.set_exception(err)
                continue
            start = 0
            for w in batch:
                if not w.done.done():  # a client that went away leaves a cancelled future
                    w.done.set_result(outputs[start : start + w.size])
                start += w.size


def join(parts: list[Inputs]) -> Inputs:
    """Requests' input tensors as one batch (the encoder pads token ids to its max_tokens: equal widths)."""
    return {name: torch.cat([p[name] for p in parts]) for name in parts[0]}

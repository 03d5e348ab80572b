"""Search iterator v2 (pymilvus 2.5.x+ ``search_iterator``): stateless pages by last bound.

The client sends ``iterator`` and ``search_iter_v2`` with a batch size, then on each later call
the ``search_iter_last_bound`` (the score of the last hit it got) and the token it was given.
The proxy keeps no state: a page is the best ``batch`` hits strictly worse than the last
bound. The querynodes are asked for a range search whose band starts at the bound (ties with
the bound are dropped here), widening until the page is known to be complete. A page never
ends inside a run of equal scores, so the strict bound of the next call loses nothing and
every entity comes back exactly once, in score order: a run the batch would split is left
whole to the next page (this one is then shorter than the batch), unless the run starts the page
and is longer than the batch, which then comes whole (Milvus keeps per-token state on its
querynodes to split such a run; a stateless proxy cannot).

Parameter rules and messages follow Milvus (internal/proxy/search_util.go
parseSearchIteratorV2Info; getLastBound in task_search.go).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.errors import invalid
from common.reduce import Hits
from services.proxy.search_results import Picked, take
from services.proxy.search_spec import MAX_TOPK, AnnSearch, bool_param

MAX_FLOAT32 = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class IteratorV2:
    token: str
    batch: int
    last_bound: float | None


def parse_iterator_v2(params: dict[str, str], grouping: bool, offset: int) -> IteratorV2 | None:
    """The iterator v2 settings of a search, or None when it is not a v2 iterator call."""
    if not bool_param(params, "search_iter_v2"):
        return None
    prefix = "parse iterator v2 info failed: "
    if not bool_param(params, "iterator"):
        raise invalid(prefix + "both iterator and search_iter_v2 must be set in the SDK")
    if grouping:
        raise invalid(
            prefix + "invalid parameter[expected=][actual=]: GroupBy is not permitted when using a search iterator"
        )
    if offset > 0:
        raise invalid(
            prefix + "invalid parameter[expected=][actual=]: "
            "Setting an offset is not permitted when using a search iterator v2"
        )
    token = params.get("search_iter_id", "")
    if token:
        try:
            uuid.UUID(token)
        except ValueError as exc:
            raise invalid(prefix + "invalid token format") from exc
    else:
        token = str(uuid.uuid4())
    raw = params.get("search_iter_batch_size", "")
    if not raw:
        raise invalid(prefix + "batch size is required")
    try:
        batch = int(raw, 0)
    except ValueError as exc:
        raise invalid(prefix + f"batch size is invalid, strconv.ParseInt: parsing {raw!r}: invalid syntax") from exc
    if not 1 <= batch <= MAX_TOPK:
        raise invalid(prefix + f"batch size is invalid, it should be in range [1, {MAX_TOPK}], but got {batch}")
    bound_raw = params.get("search_iter_last_bound")
    bound = None
    if bound_raw not in (None, ""):
        try:
            bound = float(bound_raw)
        except ValueError as exc:
            raise invalid(prefix + f"failed to parse input last bound {bound_raw}") from exc
        if not np.isfinite(bound):
            raise invalid(prefix + f"failed to parse input last bound {bound_raw}")
    return IteratorV2(token, batch, bound)


def band_params(ann: AnnSearch, bound: float) -> dict[str, Any] | None:
    """Range-search params whose band starts at ``bound`` (inclusive) and reaches every row.

    A range the user asked for (radius / range_filter) still limits the band.
    """
    far = MAX_FLOAT32 if ann.ascending else -MAX_FLOAT32
    radius = float(ann.search_params.get("radius", far))
    user_rf = ann.search_params.get("range_filter")
    start = bound
    if user_rf is not None:
        start = max(bound, float(user_rf)) if ann.ascending else min(bound, float(user_rf))
    if (start >= radius) if ann.ascending else (start <= radius):
        return None  # the bound has passed the user's radius: nothing is left
    return ann.with_params(radius=radius, range_filter=start)


def _cut(scores: np.ndarray, batch: int) -> int:
    """Hits to return from sorted ``scores``: ``batch``, or fewer to end before a run of equal
    scores the batch would split; a run that starts the page comes whole."""
    if len(scores) <= batch or scores[batch] != scores[batch - 1]:
        return min(len(scores), batch)
    start = batch - 1
    while start > 0 and scores[start - 1] == scores[batch - 1]:
        start -= 1
    if start > 0:
        return start
    cut = batch
    while cut < len(scores) and scores[cut] == scores[batch - 1]:
        cut += 1
    return cut


def iterator_page(
    search: Callable[[int, dict[str, Any] | None], Hits | None],
    ann: AnnSearch,
    it: IteratorV2,
    names: list[str],
    pk_dtype: int,
) -> tuple[Picked, float]:
    """One page of hits per query and the page's last bound."""
    params = None
    if it.last_bound is not None:
        params = band_params(ann, it.last_bound)
        if params is None:
            return Picked.empty(ann.nq, pk_dtype), it.last_bound
    k = it.batch + 1
    while True:
        hits = search(k, params)
        if hits is None:
            return Picked.empty(ann.nq, pk_dtype), _last_bound(ann, it, None)
        flat_parts: list[np.ndarray] = []
        topks: list[int] = []
        complete = True
        for q in range(ann.nq):
            filled = int(hits.filled[q].sum())
            scores = hits.scores[q, :filled]
            pos = np.arange(filled)
            if it.last_bound is not None:
                beyond = scores > it.last_bound if ann.ascending else scores < it.last_bound
                pos = pos[beyond]
            exhausted = filled < k
            cut = _cut(scores[pos], it.batch)
            if not exhausted and cut >= len(pos):  # the page may go on past what was fetched
                complete = False
                break
            flat_parts.append(q * hits.k + pos[:cut])
            topks.append(cut)
        if complete:
            flat = np.concatenate(flat_parts) if flat_parts else np.empty(0, dtype=np.int64)
            scores = hits.scores.reshape(-1)[flat]
            picked = Picked(hits.pks.reshape(-1)[flat], scores, topks, take(hits, flat, names))
            last = float(scores[-1]) if ann.nq == 1 and len(scores) else None
            return picked, _last_bound(ann, it, last)
        k *= 2


def _last_bound(ann: AnnSearch, it: IteratorV2, last: float | None) -> float:
    """Milvus's getLastBound: the page's last score, else the incoming bound, else the best end."""
    if last is not None:
        return last
    if it.last_bound is not None:
        return it.last_bound
    return -MAX_FLOAT32 if ann.ascending else MAX_FLOAT32

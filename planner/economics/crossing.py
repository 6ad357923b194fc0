"""Where a self-hosted fleet's cost curve crosses an API's cost line, for many pairs at once.

The API bill is linear in volume, a * V. A fleet's bill is a staircase of whole instances on top
of a fixed operations cost: always on, f + u * max(m0, ceil(V / d)); autoscaled by the hour,
f + u * mean_h max(m0, ceil(V w_h / D)), one staircase per hour of the traffic profile. On each
stair the fleet's cost is flat while the API's grows, so the curves can cross several times. The
break-even is the LAST crossing: from that volume on self-hosting stays cheaper. Both are exact:

- always on: a closed form (`always_on_crossings`);
- autoscaled: a fixed-point iteration on the staircase (`autoscaled_last_crossings`), exact to
  the floating-point step and vectorised over every pair still moving.

Every function takes arrays that broadcast (options x APIs) and returns arrays; nothing here
knows about candidates, catalogs or printing.
"""

from __future__ import annotations

import numpy as np

MAX_VOLUME = 1e13
"""Tokens a day beyond which nothing is searched (10 trillion: beyond any single service). A
break-even past it is reported as "never below 10T"."""

NEVER, WITHIN_SMALLEST, BREAKS_EVEN, NEVER_BELOW = 0, 1, 2, 3
VERDICTS = ("never", "within-smallest-fleet", "breaks-even", "never-below")
"""Verdict codes: never (the API is cheaper per token than a full fleet, at any volume), within
the smallest fleet, breaks even, never below MAX_VOLUME (the search stops there)."""

_EPS = 1e-9  # the cost functions' tolerance on whole instances (cost.py uses the same)
MAX_ITERATIONS = 20_000
"""Each step of the autoscaled iteration passes at least one stair. A pair still moving after
this many steps (the API's and a full fleet's cost per token within ~0.01% of each other) keeps
its current value: an upper bound from which self-hosting is sure to stay cheaper."""


def always_on_crossings(
    d: np.ndarray, u: np.ndarray, f: np.ndarray, m0: np.ndarray, a: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact last and first crossings of f + u * max(m0, ceil(V / d)) with the API line a * V.

    d: volume one instance carries at the peak hour; u: an instance's $/month; f: fixed $/month;
    m0: minimum instances; a: the API's $/month per token/day. Returns (last crossing, first
    crossing, verdict code), the crossings NaN where the code is NEVER; no volume bound applied.

    Stair j (j >= m0) spans (j d, (j+1) d] at cost f + (j+1) u. On a stair the fleet's cost is
    flat while the API's grows, so the fleet is dearest just after a stair starts; it is dearer
    there than the API when f + (j+1) u > a j d, i.e. j < (f + u) / (a d - u). Past the last such
    stair it stays cheaper; the crossing on that stair is where a V reaches its cost.
    """
    d, u, f, m0, a = (np.asarray(x, dtype=float) for x in (d, u, f, m0, a))
    margin = a * d - u  # what one more instance's worth of volume saves once the fleet is full
    never = margin <= 0
    safe = np.where(never, 1.0, margin)
    a_safe = np.where(a > 0, a, 1.0)
    j0 = np.ceil((f + u) / safe) - 1
    # The ceiling can land one stair off where a stair starts exactly on the API line (rounding):
    # the inequality itself decides between neighbours.
    last_bad = np.where(
        f + (j0 + 2) * u > a * (j0 + 1) * d, j0 + 1, np.where(f + (j0 + 1) * u > a * j0 * d, j0, j0 - 1)
    )
    last = np.where(last_bad >= m0, (f + (last_bad + 1) * u) / a_safe, (f + m0 * u) / a_safe)
    first = (f + m0 * u) / a_safe
    j = np.maximum(m0, np.ceil(f / safe) - 1)
    first = np.where(first > m0 * d, np.maximum(j * d, (f + (j + 1) * u) / a_safe), first)
    first = np.minimum(first, last)
    code = np.where(never, NEVER, np.where(last <= m0 * d, WITHIN_SMALLEST, BREAKS_EVEN))
    return np.where(never, np.nan, last), np.where(never, np.nan, first), code


class Profile:
    """A traffic profile's 24 hourly weights (mean 1), grouped by value: the diurnal profile is
    symmetric about its peak, so about 13 distinct weights do the work of 24."""

    def __init__(self, hourly_weights: tuple[float, ...] | np.ndarray):
        w = np.asarray(hourly_weights, dtype=float)
        values, counts = np.unique(w[w > 0], return_counts=True)
        self.values = values
        self.counts = counts.astype(float)  # hours with each weight
        self.hours = float(len(w))
        self.zero_hours = float(np.sum(w <= 0))  # hours without traffic: the minimum fleet
        self.peak = float(w.max())

    def instances_after(self, x: np.ndarray, m0: np.ndarray) -> np.ndarray:
        """Mean instances over the day just above volume x (in units of one instance's volume)."""
        z = np.multiply.outer(x, self.values)
        z += 1.0 + _EPS
        np.floor(z, out=z)  # floor(x w + eps) + 1: the stair just above x, hour by hour
        np.maximum(z, m0[:, None], out=z)
        return (z @ self.counts + self.zero_hours * m0) / self.hours  # whole numbers: exact sums

    def instances_at(self, x: np.ndarray, m0: np.ndarray) -> np.ndarray:
        """Mean instances over the day at volume x (left-continuous, as the cost functions are)."""
        z = np.multiply.outer(x, self.values)
        z -= _EPS
        np.ceil(z, out=z)
        np.maximum(z, m0[:, None], out=z)
        return (z @ self.counts + self.zero_hours * m0) / self.hours


def _flat(*arrays: np.ndarray) -> tuple[tuple[int, ...], list[np.ndarray]]:
    b = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in arrays))
    return b[0].shape, [x.ravel() for x in b]


def autoscaled_last_crossings(
    D: np.ndarray,
    u: np.ndarray,
    f: np.ndarray,
    m0: np.ndarray,
    a: np.ndarray,
    profile: Profile,
    max_volume: float = MAX_VOLUME,
) -> tuple[np.ndarray, np.ndarray]:
    """Last crossing of f + u * mean_h max(m0, ceil(V w_h / D)) with a * V; (volume, code).

    D: volume one instance carries (at the target utilization); the rest as in
    always_on_crossings. The volume is NaN unless the code is WITHIN_SMALLEST or BREAKS_EVEN.

    In units x = V / D with A = a D: g(x) >= x (mean weight 1), so where A <= u no volume pays
    (NEVER). Else g(x) <= x + m0 makes every x >= (f + u m0) / (A - u) cheaper, an upper bound T.
    From any T at or above the last crossing, T' = C(T+) / A is one too (the fleet cannot cost
    more below T than just above it, so no stair below T' is dearer than the API), and T' = T
    only where T is a crossing or a stair starting exactly on the API line (then C(T) / A < T is
    the next bound): iterating from the bound descends stair by stair to the last crossing.
    """
    shape, (D, u, f, m0, a) = _flat(D, u, f, m0, a)
    out = np.full(D.shape, np.nan)
    code = np.full(D.shape, NEVER, dtype=np.int8)
    live = np.flatnonzero(u < a * D)
    if live.size:
        Dl, ul, fl, ml, al = D[live], u[live], f[live], m0[live], a[live]
        Al, xmax = al * Dl, max_volume / Dl
        bound = (fl + ul * ml) / (Al - ul)
        x = np.minimum(bound, xmax)
        # Where even the bound lies within the smallest fleet (every hour at the minimum, a flat
        # cost f + u m0), the crossing is where the API reaches that cost.
        flat = bound * profile.peak <= ml
        x[flat] = (fl[flat] + ul[flat] * ml[flat]) / Al[flat]
        # Dearer just above the search bound: the last crossing lies beyond it.
        over = bound > xmax
        cut = np.flatnonzero(over)
        over[cut] = fl[cut] + ul[cut] * profile.instances_after(xmax[cut], ml[cut]) > Al[cut] * xmax[cut]
        moving = np.flatnonzero(~over & ~flat)
        # Most pairs settle within a few steps: step them in cache-sized chunks, then the few
        # still moving (API and fleet within a few % per token: many stairs) all together.
        tail = [
            _descend(x, moving[i : i + CHUNK], fl, ul, ml, Al, profile, CHUNK_STEPS)
            for i in range(0, moving.size, CHUNK)
        ]
        rest = np.concatenate([np.zeros(0, dtype=np.intp), *tail])
        _descend(x, rest, fl, ul, ml, Al, profile, MAX_ITERATIONS)
        c = np.where(x * profile.peak <= ml * (1 + 1e-12), WITHIN_SMALLEST, BREAKS_EVEN)
        c = np.where(over | (x > xmax), NEVER_BELOW, c)
        code[live] = c
        # The volume as the stair's cost over the API's price: exact whatever D's rounding.
        volume = (fl + ul * profile.instances_at(x, ml)) / al
        out[live] = np.where(c == NEVER_BELOW, np.nan, volume)
    return out.reshape(shape), code.reshape(shape)


CHUNK = 1 << 15
CHUNK_STEPS = 32


def _descend(
    x: np.ndarray,
    moving: np.ndarray,
    f: np.ndarray,
    u: np.ndarray,
    m0: np.ndarray,
    A: np.ndarray,
    profile: Profile,
    steps: int,
) -> np.ndarray:
    """Step x[moving] down the staircase (in place) at most `steps` times; the pairs still moving."""
    for _ in range(steps):
        if not moving.size:
            break
        xm = x[moving]
        nxt = (f[moving] + u[moving] * profile.instances_after(xm, m0[moving])) / A[moving]
        settled = np.flatnonzero(nxt >= xm)
        if settled.size:
            # A stair that starts exactly on the API line: the fleet is cheaper just below it
            # too, so it is not a crossing; step below it and go on.
            sm = moving[settled]
            below = (f[sm] + u[sm] * profile.instances_at(xm[settled], m0[sm])) / A[sm]
            nxt[settled] = np.where(below < xm[settled], below, xm[settled])
        x[moving] = np.minimum(nxt, xm)
        moving = moving[nxt < xm]
    return moving


def autoscaled_first_crossings(
    D: np.ndarray, u: np.ndarray, f: np.ndarray, m0: np.ndarray, a: np.ndarray, profile: Profile
) -> np.ndarray:
    """The smallest volume at which the autoscaled fleet is not dearer than the API (NaN: never).

    Below x0 = max of the bounds f + u max(m0, x) > A x every volume is dearer; from a volume S
    that is dearer, every volume up to C(S) / A is too, so S' = C(S) / A climbs to the first
    volume where the fleet costs no more than the API.
    """
    shape, (D, u, f, m0, a) = _flat(D, u, f, m0, a)
    out = np.full(D.shape, np.nan)
    A = a * D
    live = np.flatnonzero(u < A)
    if live.size:
        ul, fl, ml, Al = u[live], f[live], m0[live], A[live]
        x1 = (fl + ul * ml) / Al
        x = np.where(x1 <= ml, x1, fl / (Al - ul))
        moving = np.arange(live.size)
        for _ in range(MAX_ITERATIONS):
            if not moving.size:
                break
            nxt = (fl[moving] + ul[moving] * profile.instances_at(x[moving], ml[moving])) / Al[moving]
            settled = nxt <= x[moving]
            x[moving] = np.maximum(nxt, x[moving])
            moving = moving[~settled]
        out[live] = x * D[live]
    return out.reshape(shape)


def last_crossings(
    D: np.ndarray,
    u: np.ndarray,
    f: np.ndarray,
    m0: np.ndarray,
    a: np.ndarray,
    autoscaled: np.ndarray,
    profile: Profile,
    max_volume: float = MAX_VOLUME,
) -> tuple[np.ndarray, np.ndarray]:
    """(last crossing, verdict code) for a mix of always-on and autoscaled options, broadcast.

    Always-on fleets are sized for the busiest hour: one instance carries D / peak a day.
    """
    shape, (D, u, f, m0, a, auto) = _flat(D, u, f, m0, a, autoscaled)
    last = np.full(D.shape, np.nan)
    code = np.full(D.shape, NEVER, dtype=np.int8)
    on = auto == 0
    if on.any():
        lo, _, co = always_on_crossings(D[on] / profile.peak, u[on], f[on], m0[on], a[on])
        co = np.where((co != NEVER) & (lo > max_volume), NEVER_BELOW, co)
        last[on] = np.where(co == NEVER_BELOW, np.nan, lo)
        code[on] = co
    if (~on).any():
        la, ca = autoscaled_last_crossings(D[~on], u[~on], f[~on], m0[~on], a[~on], profile, max_volume)
        last[~on], code[~on] = la, ca
    return last.reshape(shape), code.reshape(shape)

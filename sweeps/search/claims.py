"""What a sweep may claim about a config against its baselines: verdicts with margins, corrected for
every comparison made, for every look at the seeds, and for choosing the winner.

Pure functions over frozen dataclasses (numpy and `scipy.special`; no Ray, MLflow, Optuna or
`sweeps.spec`): the service, the CLI and the replay simulator compute the same figures.

**The verdicts.** For a candidate ``a``, a baseline ``b`` and one objective (maximized) with a margin
``m > 0``, the difference ``d = a - b`` is judged by its two-sided interval at the level the test
allows (below):

* **better**: the whole interval lies above ``+m`` (better by more than the margin);
* **worse**: the whole interval lies below ``-m`` (worse by more than the margin);
* **equivalent**: the whole interval lies within ``(-m, +m)``: the two one-sided tests (TOST,
  Schuirmann 1987) each at half the level;
* **not resolved**: anything else.

The three claims partition the truth (``d > m``, ``|d| < m``, ``d < -m``), so "is the claim true" has
one answer. The interval is a paired t interval over the model seeds both configs were trained with
when their seed sets are the same (a model seed moves every config together, and the pairs cancel
it), else Welch's (every seed of each side; with positively correlated seeds this only widens it).
The shown difference, means and n are those of the test.

**Many comparisons.** Every comparison of one look (candidates x baselines x objectives) is one
family, and Holm's step-down procedure (Holm 1979) keeps the chance of any false claim in it at or
below the look's level. Each comparison's p-value is that of the claim it would make: twice the
one-sided p of "better" (against ``+m``), of "worse" (against ``-m``), or of the larger TOST p.

**Seeds added later** (more looks). The seeds come in at most ``looks`` rounds (group-sequential
testing). The error is spent over the looks by the Lan-DeMets spending function of O'Brien-Fleming
type, alpha(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)) at t = k / looks (Lan & DeMets 1983, Biometrika
70:659-663); look k's family is tested at alpha(t_k) - alpha(t_{k-1}). By the union bound over the
looks, the chance of any false claim at any look is at most ``alpha``, whatever rule decided which
configs got seeds and whether to look again (the exact O'Brien-Fleming boundaries, which use the
correlation between looks, would spend slightly more at each look; this bound never spends more
than ``alpha``). A claim made at a look stands (with that look's figures).

**Zero spread.** When every seed gave the same difference (accuracy moves in steps of one image,
noise scores are integers), the t interval has zero width; below ``min_n`` seeds such a comparison
is "not resolved": a sign test's smallest two-sided p over n identical signs is 2^(1-n), above 5 %
below 6 seeds.

**Seeds needed** for an unresolved comparison: seeds per config for ``power`` (80 %) to resolve a
true difference one margin away from the decision's boundaries (0 for "equivalent", 2 margins for
"better"): effect ``m / sd``, at the Bonferroni level of the last look, by the noncentral t (paired
on the per-seed differences, or two samples); where the observed sd has fewer than
``PLAN_DF`` degrees of freedom, the sd pooled over the objective's comparisons of the same test.
Above ``seeds_cap``: "more than N".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "ALPHA", "LOOKS", "MIN_N", "POWER", "SEEDS_CAP", "PLAN_DF", "VERDICTS", "MARGINS_HELP",
    "Difference", "Verdict", "Design", "Replicate",
    "difference", "claim_p", "judge", "holm", "spending", "look_levels", "seeds_needed",
    "pooled_sd", "verdicts", "render", "interval", "ChosenClaims", "chosen_claims",
    "DEFAULT_MARGINS", "margin_value", "check_margins", "check_budget",
]

ALPHA = 0.05
LOOKS = 2
MIN_N = 6
POWER = 0.8
SEEDS_CAP = 100
PLAN_DF = 4
VERDICTS = ("better", "equivalent", "worse", "not resolved")

MARGINS_HELP = (
    "A claim compares the chosen config with each baseline on each objective, with a margin per "
    "objective (confirm.margin; by default 0.5 accuracy points and 1 % of the noise score's maximum): the "
    "smallest difference worth acting on. 'better' means the whole "
    "interval of the difference lies above +margin, 'worse' below -margin, 'equivalent' within "
    "+-margin; anything else is 'not resolved', with the seeds per config that would resolve a "
    "difference one margin from the boundaries. The intervals are paired over shared model seeds "
    "(Welch's otherwise) and corrected for every baseline x objective tested (Holm) and for every "
    "time seeds were added (at most confirm.looks rounds), so at most 5 % of sweeps carry a false "
    "claim. The chosen config's claims rest on seeds trained after it was chosen, or on intervals "
    "widened for the choice: the output says which."
)


# -- distributions (scipy.special: the CLI cannot afford scipy.stats' import) ---------------------


def _t_sf(x: float, df: float) -> float:
    from scipy.special import stdtr

    return float(stdtr(df, -x))


def _t_isf(p: float, df: float) -> float:
    from scipy.special import stdtrit

    return float(stdtrit(df, 1.0 - p))


def _norm_cdf(z: float) -> float:
    from scipy.special import ndtr

    return float(ndtr(z))


def _norm_isf(p: float) -> float:
    from scipy.special import ndtri

    return float(-ndtri(p))


# -- one comparison -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """``mean_a - mean_b`` over the seeds the test uses; ``se`` its standard error, ``df`` its degrees
    of freedom (NaN with fewer than two seeds a side); ``sd``/``sd_df`` the spread a plan for more
    seeds rests on (of the per-seed differences when paired, else the two sides' root mean square)."""

    mean_a: float
    mean_b: float
    se: float
    df: float
    test: str  # "paired" or "Welch"
    n_a: int
    n_b: int
    sd: float
    sd_df: float

    @property
    def difference(self) -> float:
        return self.mean_a - self.mean_b


def difference(a: Mapping[object, float], b: Mapping[object, float]) -> Difference:
    """The difference of ``a`` and ``b`` (model seed -> value): paired when both were trained with
    the same seeds (at least two), else Welch (Welch-Satterthwaite df) over every seed."""
    if not a or not b:
        raise ValueError("difference: each side needs at least one seed")
    if set(a) == set(b) and len(a) >= 2:
        seeds = sorted(a)
        xa = np.array([a[s] for s in seeds], dtype=float)
        xb = np.array([b[s] for s in seeds], dtype=float)
        d = xa - xb
        n = d.size
        sd = float(d.std(ddof=1))
        return Difference(float(xa.mean()), float(xb.mean()), sd / math.sqrt(n), float(n - 1), "paired", n, n, sd, float(n - 1))
    xa = np.array(list(a.values()), dtype=float)
    xb = np.array(list(b.values()), dtype=float)
    na, nb = xa.size, xb.size
    if na < 2 or nb < 2:
        return Difference(float(xa.mean()), float(xb.mean()), math.nan, math.nan, "Welch", na, nb, math.nan, math.nan)
    sa2, sb2 = float(xa.var(ddof=1)), float(xb.var(ddof=1))
    va, vb = sa2 / na, sb2 / nb
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1)) if se > 0 else float(na + nb - 2)
    return Difference(float(xa.mean()), float(xb.mean()), se, df, "Welch", na, nb,
                      math.sqrt((sa2 + sb2) / 2), float(na + nb - 2))


def claim_p(diff: Difference, margin: float, min_n: int = MIN_N) -> tuple[str, float]:
    """The claim ``diff`` supports against ``margin`` and its p-value: the level below which the
    two-sided interval at 1 - p makes that claim. ("not resolved", 1.0) when nothing can be tested
    (one seed a side, or zero spread below ``min_n`` seeds)."""
    if margin <= 0:
        raise ValueError(f"margin={margin!r}: must be > 0")
    d, se = diff.difference, diff.se
    if not math.isfinite(se):
        return "not resolved", 1.0
    if se == 0:
        if min(diff.n_a, diff.n_b) < min_n:
            return "not resolved", 1.0
        verdict = "better" if d > margin else "worse" if d < -margin else "equivalent" if abs(d) < margin else "not resolved"
        return verdict, 0.0 if verdict != "not resolved" else 1.0
    df = diff.df
    ps = {
        "better": 2 * _t_sf((d - margin) / se, df),  # H0: d <= +m
        "worse": 2 * _t_sf((-margin - d) / se, df),  # H0: d >= -m
        "equivalent": 2 * max(_t_sf((margin - d) / se, df), _t_sf((d + margin) / se, df)),  # TOST
    }
    verdict = min(ps, key=ps.__getitem__)
    return verdict, min(1.0, ps[verdict])


def interval(diff: Difference, level: float) -> tuple[float, float]:
    """The two-sided ``level`` interval of the difference (the point itself at zero spread)."""
    d, se = diff.difference, diff.se
    if not math.isfinite(se):
        return math.nan, math.nan
    if se == 0:
        return d, d
    half = _t_isf((1 - level) / 2, diff.df) * se
    return d - half, d + half


def judge(diff: Difference, margin: float, alpha: float, min_n: int = MIN_N) -> str:
    """The verdict at level ``alpha`` alone (one comparison, one look)."""
    verdict, p = claim_p(diff, margin, min_n)
    return verdict if p <= alpha and verdict != "not resolved" else "not resolved"


# -- many comparisons, many looks ----------------------------------------------------------------------


def holm(pvalues: Sequence[float], alpha: float) -> tuple[list[bool], list[float]]:
    """Holm's step-down procedure: which hypotheses are rejected at family-wise level ``alpha``, and
    the level each was tested at (a rejected one at its step's alpha / (m - i); one not rejected at
    the step where the procedure stopped)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: (pvalues[i], i))
    rejected, levels = [False] * m, [0.0] * m
    stopped, stop_level = False, alpha
    for step, i in enumerate(order):
        level = alpha / (m - step)
        if not stopped and pvalues[i] <= level:
            rejected[i], levels[i] = True, level
        else:
            if not stopped:
                stop_level = level
            stopped = True
            levels[i] = stop_level
    return rejected, levels


def spending(t: float, alpha: float = ALPHA) -> float:
    """Lan-DeMets spending function of O'Brien-Fleming type: the error spent by information time
    ``t`` in [0, 1], 2 - 2 Phi(z_{1-alpha/2} / sqrt(t))."""
    if t <= 0:
        return 0.0
    return 2.0 - 2.0 * _norm_cdf(_norm_isf(alpha / 2) / math.sqrt(min(t, 1.0)))


def look_levels(alpha: float = ALPHA, looks: int = LOOKS) -> tuple[float, ...]:
    """The level each of ``looks`` equally spaced looks is tested at; they sum to ``alpha``."""
    if looks < 1:
        raise ValueError(f"looks={looks!r}: must be >= 1")
    spent = [spending(k / looks, alpha) for k in range(looks + 1)]
    return tuple(spent[k] - spent[k - 1] for k in range(1, looks + 1))


def seeds_needed(margin: float, sd: float, alpha: float, power: float = POWER, paired: bool = False,
                 cap: int = SEEDS_CAP) -> int | None:
    """Seeds per config for ``power`` to make a directional claim (two-sided interval at 1 - alpha)
    when the truth is one ``margin`` beyond the claim's boundary: effect margin / sd, noncentral t,
    paired (df n - 1, ncp effect sqrt(n)) or two samples of n (df 2n - 2, ncp effect sqrt(n/2)).
    None when more than ``cap`` seeds are needed."""
    if not (margin > 0 and math.isfinite(sd)):
        raise ValueError(f"seeds_needed: margin {margin!r} and sd {sd!r}")
    if sd == 0:
        return 2
    from scipy.special import nctdtr

    effect = margin / sd
    for n in range(2, cap + 1):
        df = n - 1 if paired else 2 * n - 2
        ncp = effect * math.sqrt(n if paired else n / 2)
        if 1.0 - float(nctdtr(df, ncp, _t_isf(alpha / 2, df))) >= power:
            return n
    return None


def pooled_sd(spreads: Iterable[tuple[float, float]]) -> tuple[float, float]:
    """(sd, df) pooled over (sd, df) pairs: sqrt(sum df sd^2 / sum df)."""
    pairs = [(s, f) for s, f in spreads if math.isfinite(s) and math.isfinite(f) and f > 0]
    total = sum(f for _, f in pairs)
    if total == 0:
        return math.nan, 0.0
    return math.sqrt(sum(f * s * s for s, f in pairs) / total), total


@dataclass(frozen=True)
class Replicate:
    """One trained config: its model ``seed``, the ``look`` (confirmation round, from 1) that trained
    it, and its value per objective (in the `Design`'s order). A searched config's selecting seed is
    not a replicate (it chose the config)."""

    config: str
    seed: int
    look: int
    values: tuple[float, ...]


@dataclass(frozen=True)
class Design:
    """What is compared and how strictly: objectives with their margins (absolute, > 0), the
    baselines, the family-wise ``alpha`` over every look, at most ``looks`` looks."""

    objectives: tuple[str, ...]
    margins: tuple[float, ...]
    baselines: tuple[str, ...]
    alpha: float = ALPHA
    looks: int = LOOKS
    min_n: int = MIN_N
    power: float = POWER
    seeds_cap: int = SEEDS_CAP

    def __post_init__(self) -> None:
        if len(self.objectives) != len(self.margins) or not self.objectives:
            raise ValueError("Design: one margin per objective")
        if not all(math.isfinite(m) and m > 0 for m in self.margins):
            raise ValueError(f"Design: margins must be > 0, got {self.margins}")
        if not self.baselines:
            raise ValueError("Design: at least one baseline")
        if not 0 < self.alpha < 0.5 or self.looks < 1 or self.min_n < 2 or not 0 < self.power < 1:
            raise ValueError("Design: alpha in (0, 0.5), looks >= 1, min_n >= 2, power in (0, 1)")

    @property
    def levels(self) -> tuple[float, ...]:
        return look_levels(self.alpha, self.looks)


@dataclass(frozen=True)
class Verdict:
    """A candidate against a baseline on one objective, as tested: the difference and interval of the
    test that decided (at ``level``, two-sided confidence ``1 - level``), from look ``look``."""

    candidate: str
    baseline: str
    objective: str
    verdict: str
    margin: float
    difference: float
    low: float
    high: float
    level: float
    p_value: float
    test: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    look: int
    seeds_needed: int | None = None  # unresolved: seeds per config to resolve at the margin
    beyond_cap: int | None = None  # unresolved, and more than this many seeds (the cap) would be needed
    zero_spread: bool = False

    @property
    def claimed(self) -> bool:
        return self.verdict != "not resolved"

    def to_dict(self) -> dict[str, object]:
        def num(v: float) -> float | None:
            return None if not math.isfinite(v) else float(v)

        return {"candidate": self.candidate, "baseline": self.baseline, "objective": self.objective,
                "verdict": self.verdict, "margin": self.margin, "difference": num(self.difference),
                "low": num(self.low), "high": num(self.high), "confidence": 1 - self.level,
                "p_value": num(self.p_value), "test": self.test, "n": [self.n_a, self.n_b],
                "means": [num(self.mean_a), num(self.mean_b)], "look": self.look,
                "seeds_needed": self.seeds_needed, "beyond_cap": self.beyond_cap, "zero_spread": self.zero_spread}


def _by_config(replicates: Iterable[Replicate], upto: int | None, after: int = 0) -> dict[str, dict[int, tuple[float, ...]]]:
    out: dict[str, dict[int, tuple[float, ...]]] = {}
    for r in replicates:
        if (upto is None or r.look <= upto) and r.look > after:
            seeds = out.setdefault(r.config, {})
            if r.seed in seeds:
                raise ValueError(f"{r.config}: model seed {r.seed} twice")
            seeds[r.seed] = r.values
    return out


def _family(design: Design, data: Mapping[str, Mapping[int, tuple[float, ...]]], candidates: Sequence[str],
            baselines: Sequence[str] | None = None) -> list[tuple[str, str, int, Difference]]:
    out = []
    for c in candidates:
        for b in baselines or design.baselines:
            for o in range(len(design.objectives)):
                a_vals = {s: v[o] for s, v in data.get(c, {}).items()}
                b_vals = {s: v[o] for s, v in data.get(b, {}).items()}
                if a_vals and b_vals:
                    out.append((c, b, o, difference(a_vals, b_vals)))
    return out


def _test_family(design: Design, family: list[tuple[str, str, int, Difference]], level: float, look: int,
                 bonferroni: bool = False) -> list[Verdict]:
    claims = [claim_p(d, design.margins[o], design.min_n) for _, _, o, d in family]
    if bonferroni:
        m = len(family)
        rejected = [p <= level / m for _, p in claims]
        levels = [level / m] * m
    else:
        rejected, levels = holm([p for _, p in claims], level)
    out = []
    for (c, b, o, d), (verdict, p), ok, lv in zip(family, claims, rejected, levels):
        low, high = interval(d, 1 - lv)
        zero = d.se == 0 and min(d.n_a, d.n_b) < design.min_n
        out.append(Verdict(c, b, design.objectives[o], verdict if ok and verdict != "not resolved" else "not resolved",
                           design.margins[o], d.difference, low, high, lv, p, d.test, d.n_a, d.n_b,
                           d.mean_a, d.mean_b, look, zero_spread=zero))
    return out


def _with_plans(design: Design, final: list[Verdict], family: list[tuple[str, str, int, Difference]], level: float) -> list[Verdict]:
    """Seeds needed for the unresolved verdicts (sd pooled where the observed one has few df)."""
    import dataclasses

    diffs = {(c, b, design.objectives[o]): d for c, b, o, d in family}
    pools: dict[tuple[str, str], tuple[float, float]] = {}
    for obj in design.objectives:
        for test in ("paired", "Welch"):
            pools[(obj, test)] = pooled_sd((d.sd, d.sd_df) for (_, _, o), d in diffs.items() if o == obj and d.test == test)
    m = max(1, len(family))
    out = []
    for v in final:
        d = diffs.get((v.candidate, v.baseline, v.objective))
        if v.claimed or d is None:
            out.append(v)
            continue
        if v.zero_spread:
            out.append(dataclasses.replace(v, seeds_needed=design.min_n))
            continue
        sd = d.sd
        if not (math.isfinite(sd) and d.sd_df >= PLAN_DF):
            pooled, df = pools[(v.objective, d.test)]
            if math.isfinite(pooled) and df > (d.sd_df if math.isfinite(d.sd_df) else 0):
                sd = pooled
        if not math.isfinite(sd):
            out.append(v)
            continue
        n = seeds_needed(v.margin, sd, level / m, design.power, paired=d.test == "paired", cap=design.seeds_cap)
        out.append(dataclasses.replace(v, seeds_needed=n, beyond_cap=design.seeds_cap if n is None else None))
    return out


def verdicts(design: Design, replicates: Sequence[Replicate], candidates: Sequence[str] | None = None,
             plans: bool = True) -> tuple[Verdict, ...]:
    """Every candidate against every baseline on every objective, through every look so far: each
    look's family tested by Holm at that look's level, a claim made at a look standing with that
    look's figures, the unresolved ones with the latest look's figures (and, with ``plans``, the
    seeds they need)."""
    last = max((r.look for r in replicates), default=0)
    if last > design.looks:
        raise ValueError(f"look {last} of at most {design.looks}")
    names = sorted({r.config for r in replicates} - set(design.baselines)) if candidates is None else list(candidates)
    levels = design.levels
    decided: dict[tuple[str, str, str], Verdict] = {}
    latest: list[Verdict] = []
    family: list[tuple[str, str, int, Difference]] = []
    for k in range(1, last + 1):
        family = _family(design, _by_config(replicates, k), names)
        latest = _test_family(design, family, levels[k - 1], k)
        for v in latest:
            if v.claimed:
                decided[(v.candidate, v.baseline, v.objective)] = v
    final = [decided.get((v.candidate, v.baseline, v.objective), v) for v in latest]
    return tuple(_with_plans(design, final, family, levels[-1]) if plans else final)


# -- the chosen config -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChosenClaims:
    """The chosen config's verdicts and the sentence that says what they rest on."""

    config: str
    basis: str  # "fresh seeds" or "adjusted for the choice"
    verdicts: tuple[Verdict, ...]
    sentence: str


def chosen_claims(design: Design, replicates: Sequence[Replicate], chosen: str, among: Sequence[str],
                  chosen_at_look: int) -> ChosenClaims:
    """The claims of ``chosen``, picked from ``among`` on the replicates of looks up to
    ``chosen_at_look``. With seeds trained after the choice (looks > ``chosen_at_look``), its claims
    rest on those only (the baselines on every seed: they were not chosen), Holm at ``alpha`` over
    baselines x objectives: a new confirmatory test. Without, the claims are tested on the choosing
    seeds at the Bonferroni level over every config it was chosen among x baselines x objectives:
    simultaneous intervals, which hold for whichever config a rule picks (no winner's curse)."""
    if chosen not in among:
        raise ValueError(f"{chosen!r} is not among the configs it was chosen from")
    fresh = _by_config([r for r in replicates if r.config == chosen], None, after=chosen_at_look)
    if fresh.get(chosen):
        data = _by_config([r for r in replicates if r.config != chosen], None)
        data[chosen] = fresh[chosen]
        family = _family(design, data, [chosen])
        vs = _test_family(design, family, design.alpha, max(r.look for r in replicates))
        n = len(fresh[chosen])
        sentence = (f"{chosen}'s claims rest on {n} seed{'s' if n != 1 else ''} trained after it was chosen "
                    f"(not the seeds that chose it).")
        return ChosenClaims(chosen, "fresh seeds", tuple(_with_plans(design, vs, family, design.alpha)), sentence)
    upto = min(chosen_at_look, design.looks)
    data = _by_config(replicates, upto)
    level = design.levels[upto - 1]
    m_all = len(among) * len(design.baselines) * len(design.objectives)
    family = _family(design, data, [chosen])
    claims = [claim_p(d, design.margins[o], design.min_n) for _, _, o, d in family]
    out = []
    for (c, b, o, d), (verdict, p) in zip(family, claims):
        lv = level / m_all
        low, high = interval(d, 1 - lv)
        ok = p <= lv and verdict != "not resolved"
        out.append(Verdict(c, b, design.objectives[o], verdict if ok else "not resolved", design.margins[o],
                           d.difference, low, high, lv, p, d.test, d.n_a, d.n_b, d.mean_a, d.mean_b, upto,
                           zero_spread=d.se == 0 and min(d.n_a, d.n_b) < design.min_n))
    configs = f"{len(among)} config{'s' if len(among) != 1 else ''}"
    sentence = (f"{chosen} was chosen among {configs} on the same seeds, so its intervals are "
                f"widened for the choice ({_pct(1 - level / m_all)} each, simultaneous over {configs} x "
                f"{len(design.baselines)} baseline{'s' if len(design.baselines) != 1 else ''} x "
                f"{len(design.objectives)} objective{'s' if len(design.objectives) != 1 else ''}).")
    return ChosenClaims(chosen, "adjusted for the choice", tuple(_with_plans(design, out, family, level * len(family) / m_all)), sentence)


# -- what a user reads -----------------------------------------------------------------------------------


def _pct(confidence: float) -> str:
    """95%, 98.75%, 99.997%: enough decimals to show the level's first two digits."""
    level = 100 * (1 - confidence)
    decimals = 2 if level <= 0 else max(2, 1 - math.floor(math.log10(level)))
    text = f"{100 * confidence:.{decimals}f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _num(v: float) -> str:
    if not math.isfinite(v):
        return "n/a"
    if abs(v) >= 100:
        return f"{v:+,.0f}"
    return f"{v:+.3g}" if abs(v) >= 0.01 else f"{v:+.2g}"


def render(v: Verdict, fmt: Callable[[float], str] = _num, candidate: bool = False, span: float = math.inf) -> str:
    """One line a user reads: the verdict, the tested difference with its interval, the seeds, and
    for an unresolved one what would resolve it (``candidate``: name the candidate first). An
    unresolved interval wider than ``span``, the objective's whole scale (2 seeds a side at a
    corrected level), is said in words rather than printed past the scale."""
    margin = fmt(v.margin).lstrip("+")
    figures = (f"{fmt(v.difference)} ({_pct(1 - v.level)} CI {fmt(v.low)} to {fmt(v.high)}, "
               f"{v.test}, seeds {v.n_a} vs {v.n_b})")
    head = f"{v.candidate}: " * candidate + f"{v.objective} vs {v.baseline}: "
    if v.verdict == "better":
        return head + f"better by more than the margin {margin}: {figures}"
    if v.verdict == "worse":
        return head + f"worse by more than the margin {margin}: {figures}"
    if v.verdict == "equivalent":
        return head + f"equivalent within ±{margin}: {figures}"
    if v.zero_spread:
        return head + (f"not resolved: every seed gave {fmt(v.difference)}, and {v.n_a} vs {v.n_b} seeds are "
                       f"too few to tell that from luck; {v.seeds_needed or MIN_N} seeds would")
    if not math.isfinite(v.low):
        return head + f"not resolved: {fmt(v.difference)} from one seed a side"
    tail = (f"; about {v.seeds_needed} seeds per config would resolve a margin of {margin}" if v.seeds_needed
            else f"; more than {v.beyond_cap} seeds per config would be needed: at this spread the margin is too small to resolve"
            if v.beyond_cap else "")
    if v.high - v.low > span:
        return head + (f"not resolved: {fmt(v.difference)} ({v.test}, seeds {v.n_a} vs {v.n_b}); at {v.n_a} vs "
                       f"{v.n_b} seeds its {_pct(1 - v.level)} interval is wider than the score's whole scale{tail}")
    return head + f"not resolved at margin {margin}: {figures}{tail}"


# -- the spec's keys (validated where the spec is read; the messages name the key and the fix) ---------

# Defaults per objective: (amount, unit). A noise-score margin is a share of the score's maximum (the
# noise images x noise levels the dataset scores), an accuracy margin is in percentage points.
DEFAULT_MARGINS: dict[str, tuple[float, str]] = {"val_accuracy": (0.5, "points"), "val_noise_score": (0.01, "share")}


def margin_value(objective: str, amount: float, maximum: float | None = None) -> float:
    """The absolute margin of ``objective`` for a spec's ``amount``: accuracy points / 100 (accuracy
    is a fraction), a noise-score share times the score's ``maximum``, else ``amount`` as it is."""
    unit = DEFAULT_MARGINS.get(objective, (None, "absolute"))[1]
    if unit == "points":
        return amount / 100.0
    if unit == "share":
        if maximum is None:
            raise ValueError(f"{objective}: a share of the maximum needs the maximum")
        return amount * maximum
    return amount


def check_margins(margin: object, objectives: Sequence[str]) -> dict[str, float]:
    """``confirm.margin`` as a spec gives it (a mapping objective -> amount, or None for the
    defaults), checked: one line naming the key and the fix (SpecError) when it is wrong."""
    from sweeps.errors import spec_fail

    if margin is None:
        return {o: DEFAULT_MARGINS[o][0] for o in objectives if o in DEFAULT_MARGINS}
    if not isinstance(margin, Mapping):
        spec_fail("confirm.margin", f"{margin!r} must be a mapping of objective to margin, e.g. "
                  "{val_accuracy: 0.5, val_noise_score: 0.01}")
    out = {o: DEFAULT_MARGINS[o][0] for o in objectives if o in DEFAULT_MARGINS}
    for key, value in margin.items():
        if key not in objectives:
            spec_fail(f"confirm.margin.{key}", f"not an objective of this sweep; use one of {', '.join(objectives)}")
        unit = DEFAULT_MARGINS.get(str(key), (None, "absolute"))[1]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            spec_fail(f"confirm.margin.{key}", f"{value!r} must be a number > 0 (the smallest difference worth a claim)")
        if unit == "share" and value >= 1:
            spec_fail(f"confirm.margin.{key}", f"{value!r} is a share of the score's maximum and must be below 1 "
                      "(0.01 is 1 % of the maximum)")
        if unit == "points" and value >= 100:
            spec_fail(f"confirm.margin.{key}", f"{value!r} is in accuracy points and must be below 100 (0.5 is half a point)")
        out[str(key)] = float(value)
    return out


def check_budget(budget: object, least: int) -> int:
    """``confirm.budget`` (trials for seed replicates in all, or None for ``least``): an integer of at
    least ``least``, the first round's trials ((top + baselines) x seeds)."""
    from sweeps.errors import spec_fail

    if budget is None:
        return least
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < least:
        spec_fail("confirm.budget", f"{budget!r} must be an integer >= {least} (trials for replicates in all, "
                  "at least the first round's (top + baselines) x seeds)")
    return int(budget)

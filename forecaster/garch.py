"""The seasonal GARCH yardstick: GARCH(1,1) with Student-t innovations on deseasonalised returns,
with filtered-historical-simulation quantiles. The classical model a quant would reach for first,
and the bar a learned band must clear.

- Returns are divided by the time-of-week factor of the volatility model (Andersen & Bollerslev
  1997; ``volatility.seasonal_factors``: step of the day x day of the week, shrunk toward flat).
- GARCH(1,1)-t (Bollerslev 1986/1987) is fit by maximum likelihood with the ``arch`` library on the
  fit span (for 1h, the previous 4,320 hours, like the other bands' windows).
- The h-step variance from an origin t is sum_{j=1..h} season(t+j)^2 E_t[sigma^2_{t+j}], with the
  GARCH's mean-reverting forecast E_t[sigma^2_{t+j}] = omega * sum_{k<j-1} p^k + p^(j-1) sigma^2_{t+1}
  (p = alpha + beta); its square root is the scale of the h-step return.
- The band is [q10_h, q90_h] x scale_h(t), the quantiles of past h-step returns over their own scale
  on the fit span (filtered historical simulation, Barone-Adesi et al. 1999): fat tails and skew
  come from the data, not from the t distribution.

A fit reads only rows at or before its end; a band at origin t reads only rows at or before t.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from core.intervals import DEFAULT_INTERVAL, Interval, get_interval

from .bands import LOWER, UPPER, h_returns
from .errors import NotEnoughHistory
from .volatility import seasonal_factors

MIN_FIT_RETURNS = 500  # fewer returns than this: no GARCH band (its four parameters are not identified)
_PERCENT = 100.0  # arch fits best on returns of order 1: fit on percent, store in log-return units


@dataclass
class GarchModel:
    """A fitted seasonal GARCH-t FHS band (module docstring); plain numbers, saved as JSON."""

    interval: Interval
    season: np.ndarray  # (slots per week,) time-of-week factors
    omega: float  # in squared deseasonalised log-return units
    alpha: float
    beta: float
    nu: float  # Student-t degrees of freedom of the fit (reported; the band's shape is FHS)
    mean_var: float  # mean squared deseasonalised return of the fit span: the filter's start and gap fill
    z: np.ndarray  # (H, 2) LOWER and UPPER quantiles of R_h / scale_h on the fit span

    @property
    def horizon(self) -> int:
        return len(self.z)

    @property
    def persistence(self) -> float:
        return self.alpha + self.beta

    def to_dict(self) -> dict:
        return {"interval": self.interval.name, "season": self.season.tolist(), "omega": self.omega,
                "alpha": self.alpha, "beta": self.beta, "nu": self.nu,
                "mean_var": self.mean_var, "z": self.z.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> GarchModel:
        return cls(get_interval(d.get("interval", DEFAULT_INTERVAL)), np.asarray(d["season"], float),
                   float(d["omega"]), float(d["alpha"]), float(d["beta"]), float(d["nu"]),
                   float(d["mean_var"]), np.asarray(d["z"], float))

    def next_variance(self, returns: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """(N,) sigma^2 of the deseasonalised return of step i + 1, known at step i, filtered from the
        first row. The filter starts at the fit span's mean square, and a missing return (a gap)
        counts as that mean square: not the GARCH's unconditional variance, which a persistence
        near 1 (common on crypto) makes huge."""
        e = returns / self.season[slot]
        shock = self.alpha * np.where(np.isfinite(e), e * e, self.mean_var)
        # sigma2[i] = omega + shock[i] + beta * sigma2[i - 1]: a first-order linear filter
        out, _ = lfilter([1.0], [1.0, -self.beta], self.omega + shock, zi=[self.beta * self.mean_var])
        return out

    def scale(self, returns: np.ndarray, slot: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """(n, H) standard deviation of the h-step log return from each origin."""
        origins = np.asarray(origins, dtype=np.int64)
        s1 = self.next_variance(returns, slot)[origins]  # sigma^2_{t+1}
        j = np.arange(self.horizon)  # j-1 for j = 1..H
        p = self.persistence
        geo = p ** j  # (H,)
        acc = np.cumsum(np.r_[0.0, geo[:-1]])  # sum_{k < j-1} p^k
        expected = self.omega * acc[None, :] + geo[None, :] * s1[:, None]  # (n, H) E[sigma^2_{t+j}]
        ahead = (np.asarray(slot)[origins][:, None] + 1 + j[None, :]) % len(self.season)
        return np.sqrt(np.cumsum(self.season[ahead] ** 2 * expected, axis=1))

    def band(self, returns: np.ndarray, slot: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """(n, H, 2) 10% and 90% quantiles of the log return from each origin."""
        return self.scale(returns, slot, origins)[..., None] * self.z[None, :, :]


def _fit_garch_t(e: np.ndarray) -> tuple[float, float, float, float]:
    """Maximum-likelihood GARCH(1,1)-t of zero-mean returns e (no NaN) -> omega, alpha, beta, nu in
    the units of e."""
    from arch import arch_model  # a heavy import: only when a GARCH is fit

    with warnings.catch_warnings():
        # convergence chatter is judged below by the parameters themselves
        warnings.simplefilter("ignore")
        res = arch_model(e * _PERCENT, mean="Zero", vol="GARCH", p=1, q=1, dist="t", rescale=False).fit(
            disp="off", show_warning=False)
    par = res.params
    omega, alpha, beta, nu = (float(par[k]) for k in ("omega", "alpha[1]", "beta[1]", "nu"))
    if not all(np.isfinite([omega, alpha, beta, nu])) or omega <= 0 or alpha < 0 or beta < 0:
        raise NotEnoughHistory("the GARCH fit did not converge to valid parameters")
    return omega / _PERCENT ** 2, alpha, beta, nu


def fit_garch(log_close: np.ndarray, times, horizon: int, *, start: int = 0, end: int | None = None,
              interval: str | Interval = DEFAULT_INTERVAL) -> GarchModel:
    """Fit on grid rows start..end (default: to the last): returns whose h-step target lies after
    ``end`` are not used. ``log_close``: (N,) log closes of the grid (NaN at gaps); ``times``: its
    open times. Raises NotEnoughHistory with too few returns or a fit that fails."""
    iv = get_interval(interval)
    end = len(log_close) - 1 if end is None else end
    log_close = np.asarray(log_close[start:end + 1], dtype=np.float64)
    r = np.diff(log_close, prepend=np.nan)
    slot = iv.slot_of_week(times[start:end + 1])
    ok = np.isfinite(r)
    if ok.sum() < MIN_FIT_RETURNS:
        raise NotEnoughHistory(f"{int(ok.sum())} {iv.name} returns for the GARCH band; it needs {MIN_FIT_RETURNS}")
    season = seasonal_factors(r, slot, iv)
    e = (r / season[slot])[ok]
    omega, alpha, beta, nu = _fit_garch_t(e)
    model = GarchModel(iv, season, omega, alpha, beta, nu, float(np.mean(e * e)), np.zeros((horizon, 2)))
    # FHS: the quantiles of past h-step returns over the scale the fit gives them at their start
    targets = h_returns(log_close, horizon)
    scale = model.scale(r, slot, np.arange(len(r)))
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = targets / scale
    for h in range(horizon):
        col = scaled[:, h][np.isfinite(scaled[:, h])]
        if col.size < MIN_FIT_RETURNS // 2:
            raise NotEnoughHistory(f"{col.size} complete {h + 1}-step returns for the GARCH band's quantiles")
        model.z[h] = np.quantile(col, (LOWER, UPPER))
    return model

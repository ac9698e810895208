"""Does a learned model earn a place in the band? One network for every hourly market at once.

The design the literature points to (Zhang, Zhang, Cucuringu & Qian, J. Financial Econometrics 2023:
pooled networks beat per-asset HAR models for realised volatility): a small network trained on
every market's samples together, each market's inputs and targets in units of its own volatility,
so that a thin altcoin and BTC share what they have in common. Inputs at an origin: the market's
deseasonalised realised volatility over a day, a week and a month from squared returns and from
the high/low range (as ratios to its month, plus the month's level against its half year), the same
for BTC, its volume of the last day against the month, and the time of the week. Targets: the
h-step log return over (the seasonal units of the next h steps x the month's volatility). Output:
the 10% and 90% quantiles for h = 1..H (pinball loss), a band once multiplied back.

Walk-forward exactly as bench/quality.py (an origin every hour over the last 360 days, a fit every
168 hours on the previous 4,320, early stopping on the latest 10% of them), warm-started from the
previous fit. Compared on the same origins with the bands of bench/quality.py's --out file:

    .venv/bin/python bench/quality.py --out q.csv.gz && .venv/bin/python bench/pooled.py q.csv.gz

It prints, per series and averaged with a paired block-bootstrap interval: the pooled band alone,
and the equal-weight mean of (volatility, garch, pooled) against (volatility, garch, fhs).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_data import shared_data  # noqa: E402
from bench.bootstrap import day_sums, difference_interval, ratio_interval  # noqa: E402

BTC = "upbit_BTCKRW"
H, TRAIN, EVERY, DAYS = 24, 4320, 168, 360


def market_inputs(frame: pd.DataFrame, season: np.ndarray):
    """Per-step inputs (N, 9), the scale of each h-step return (N, H) and the h-step returns
    (N, H), from rows at or before each step."""
    from forecaster import windows
    from forecaster.bands import h_returns
    from forecaster.frames import step_grid
    from forecaster.volatility import features, horizon_units

    s = windows.series_from_grid(step_grid(frame))
    f = features(s.log_close, s.log_range, s.slot, season)  # (N, 6): sq d/w/m, range d/w/m
    month = np.where(f[:, 2] > 0, f[:, 2], f[:, 5])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.log(f / month[:, None])[:, [0, 1, 3, 4, 5]]
        level = np.log(month / pd.Series(month).rolling(4320, min_periods=720).mean().to_numpy())
        vol = pd.Series(np.expm1(s.log_volume))
        volume = np.log((vol.rolling(24).mean() + 1) / (vol.rolling(720).mean() + 1)).to_numpy()
    hour = s.times.hour.to_numpy() * 2 * np.pi / 24
    x = np.c_[ratios, level, volume, np.sin(hour), np.cos(hour)]
    scale = month[:, None] * horizon_units(season, s.slot, H)
    return s.times, np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).clip(-10, 10), scale, h_returns(s.log_close, H)


class Net:
    """A two-layer MLP: inputs -> (H, 2) quantiles that never cross (lower = -softplus, upper = +softplus)."""

    def __init__(self, n_in: int, hidden: int = 64, seed: int = 0):
        import torch
        torch.manual_seed(seed)
        self.model = torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.GELU(),
                                         torch.nn.Linear(hidden, hidden), torch.nn.GELU(),
                                         torch.nn.Linear(hidden, 2 * H))

    def quantiles(self, x):
        import torch.nn.functional as F
        import torch
        out = self.model(x).view(-1, H, 2)
        return torch.stack([-F.softplus(out[..., 0]), F.softplus(out[..., 1])], dim=-1)


def pinball(q, z):
    import torch
    taus = torch.tensor([0.1, 0.9])
    err = z[..., None] - q
    return torch.maximum(taus * err, (taus - 1) * err).mean()


def fit(net: Net, x: np.ndarray, z: np.ndarray, epochs: int = 40, patience: int = 5) -> int:
    import torch
    n = len(x)
    cut = int(n * 0.9)  # x, z are in time order per market, interleaved: split by the time column
    order = np.argsort(x[:, -1], kind="stable")  # last column: the origin's time (dropped below)
    tr, va = order[:cut], order[cut:]
    X = torch.tensor(x[:, :-1], dtype=torch.float32)
    Z = torch.tensor(z, dtype=torch.float32)
    opt = torch.optim.AdamW(net.model.parameters(), lr=2e-3, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(0)

    def val() -> float:
        with torch.no_grad():
            return float(pinball(net.quantiles(X[va]), Z[va]))

    best, state, bad, epoch = val(), {k: v.clone() for k, v in net.model.state_dict().items()}, 0, 0
    for epoch in range(1, epochs + 1):
        perm = torch.tensor(tr)[torch.randperm(len(tr), generator=gen)]
        for i in range(0, len(perm), 512):
            idx = perm[i:i + 512]
            loss = pinball(net.quantiles(X[idx]), Z[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        v = val()
        if v < best - 1e-6:
            best, state, bad = v, {k: t.clone() for k, t in net.model.state_dict().items()}, 0
        else:
            bad += 1
            if bad >= patience:
                break
    net.model.load_state_dict(state)
    return epoch


def run(scored: pd.DataFrame, series: list[str]) -> pd.DataFrame:
    import torch
    torch.set_num_threads(2)
    from core.intervals import get_interval
    from forecaster.frames import candles_frame, step_grid
    from forecaster.volatility import seasonal_factors

    frames = {n: candles_frame(pd.read_csv(shared_data() / f"{n}_1h_dev.csv")) for n in {*series, BTC}}
    end = min(f.index[-1] for f in frames.values())
    origins_all = pd.date_range(end - (H + DAYS * 24 - 1) * pd.Timedelta(hours=1), end - H * pd.Timedelta(hours=1),
                                freq="h", tz="UTC")
    fit_times = origins_all[::EVERY]
    out, net, started = [], None, time.perf_counter()
    for k, fit_time in enumerate(fit_times):
        # inputs with the season known at the fit; BTC's inputs beside each market's
        data = {}
        for n in {*series, BTC}:
            # the season from up to two years before the fit; features on what the window reads
            past = frames[n].loc[fit_time - 17519 * pd.Timedelta(hours=1):fit_time]
            g = step_grid(past)
            season = seasonal_factors(np.diff(np.log(g["close"].to_numpy()), prepend=np.nan),
                                      get_interval("1h").slot_of_week(g.index))
            f = frames[n].loc[fit_time - (TRAIN + 4320 + 800) * pd.Timedelta(hours=1):
                              fit_time + (EVERY + H) * pd.Timedelta(hours=1)]
            data[n] = market_inputs(f, season)
        bt, bx = data[BTC][0], data[BTC][1]
        xs, zs, tests = [], [], []
        for n in series:
            times, x, scale, ret = data[n]
            bxi = pd.DataFrame(bx, index=bt).reindex(times).fillna(0.0).to_numpy()
            xx = np.c_[x, bxi[:, :6]]
            z = ret / scale
            t_idx = np.flatnonzero((times > fit_time - TRAIN * pd.Timedelta(hours=1))
                                   & (times <= fit_time - H * pd.Timedelta(hours=1)))
            ok = t_idx[np.isfinite(z[t_idx]).all(axis=1)]
            xs.append(np.c_[xx[ok], (times[ok] - fit_time).total_seconds().to_numpy()])
            zs.append(z[ok])
            test = np.flatnonzero((times >= fit_time) & (times < fit_time + EVERY * pd.Timedelta(hours=1))
                                  & times.isin(origins_all))
            tests.append((n, times[test], xx[test], scale[test]))
        x_all, z_all = np.concatenate(xs), np.concatenate(zs)
        if net is None:
            net = Net(x_all.shape[1] - 1)  # warm start: the same network carries on at the next fit
        epochs = fit(net, x_all, z_all)
        with torch.no_grad():
            for n, times, xx, scale in tests:
                q = net.quantiles(torch.tensor(xx, dtype=torch.float32)).numpy().astype(np.float64)
                band = q * scale[..., None]
                out.append(pd.DataFrame({"series": n, "origin_time": np.repeat(times, H),
                                         "horizon": np.tile(np.arange(1, H + 1), len(times)),
                                         "pooled_lo": band[..., 0].ravel(), "pooled_up": band[..., 1].ravel()}))
        print(f"fit {k + 1}/{len(fit_times)} at {fit_time:%Y-%m-%d}: {len(x_all)} samples, {epochs} epochs, "
              f"{time.perf_counter() - started:.0f}s", flush=True)
    pooled = pd.concat(out, ignore_index=True)
    scored = scored.merge(pooled, on=["series", "origin_time", "horizon"], how="inner")
    close = scored["naive"]
    scored["pooled_lower"], scored["pooled_upper"] = close * np.exp(scored["pooled_lo"]), close * np.exp(scored["pooled_up"])
    for name, members in {"mean_vgp": ("volatility", "garch", "pooled"), "mean_vgf": ("volatility", "garch", "fhs")}.items():
        for side in ("lower", "upper"):
            scored[f"{name}_{side}"] = close * np.exp(np.mean([np.log(scored[f"{m}_{side}"] / close) for m in members], axis=0))
    return scored


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scored", help="bench/quality.py --out file (1h, the seven series)")
    args = ap.parse_args(argv)
    scored = pd.read_csv(args.scored, parse_dates=["origin_time", "target_time"])
    series = sorted(scored["series"].unique())
    out = run(scored, series)
    bands = ("yhat", "empirical", "volatility", "garch", "fhs", "pooled", "mean_vgp", "mean_vgf")
    sums = {n: day_sums(g, bands, pd.Timedelta(days=1)) for n, g in out.groupby("series")}
    for n in series:
        s = sums[n]
        cells = "  ".join(f"{b} {ratio_interval(s, b, 'empirical')['ratio']:.4f}" for b in bands[2:])
        cover = ((out.loc[out.series == n, "actual"] >= out.loc[out.series == n, "pooled_lower"])
                 & (out.loc[out.series == n, "actual"] <= out.loc[out.series == n, "pooled_upper"])).mean()
        print(f"{n:<16} /empirical: served {ratio_interval(s, 'yhat', 'empirical')['ratio']:.4f}  {cells}  "
              f"pooled coverage {cover:.3f}")
    all_sums = list(sums.values())
    for b in bands:
        r = ratio_interval(all_sums, b, "empirical")
        print(f"mean of {len(series)} series, {b:>10} / empirical: {r['ratio']:.4f} [{r['low']:.4f}, {r['high']:.4f}]")
    both = [{"a": s["mean_vgp"], "b": s["mean_vgf"], "empirical": s["empirical"]} for s in all_sums]
    d = difference_interval([{"x": s["a"], "empirical": s["empirical"]} for s in both],
                            [{"x": s["b"], "empirical": s["empirical"]} for s in both], "x", "empirical")
    print(f"mean(vol, garch, pooled) minus mean(vol, garch, fhs), relative to empirical: {d['difference']:+.4f} "
          f"[{d['low']:+.4f}, {d['high']:+.4f}] (90% paired block bootstrap over {d['blocks']} days)")
    d = difference_interval([{"x": s["pooled"], "empirical": s["empirical"]} for s in all_sums],
                            [{"x": s["volatility"], "empirical": s["empirical"]} for s in all_sums], "x", "empirical")
    print(f"pooled alone minus volatility model alone: {d['difference']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

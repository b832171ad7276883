"""The written report of a training run: markdown metrics plus an SVG calibration plot."""

from __future__ import annotations

import json
from pathlib import Path

from service.modeling.monitoring import reliability_bins
from service.training.model_card import card_markdown
from service.training.results import Evaluated, TrainResult


def calibration_svg(points: list[tuple[float, float, int]], size: int = 320) -> str:
    pad = 40
    scale = size - 2 * pad

    def xy(px: float, py: float) -> tuple[float, float]:
        return pad + px * scale, size - pad - py * scale

    (x0, y0), (x1, y1) = xy(0, 0), xy(1, 1)
    dots = "".join(
        f'<circle cx="{xy(px, py)[0]:.1f}" cy="{xy(px, py)[1]:.1f}" r="4" fill="#1f77b4">'
        f"<title>predicted {px:.3f}, observed {py:.3f}, n={n}</title></circle>"
        for px, py, n in points
    )
    path = " ".join(f"{xy(px, py)[0]:.1f},{xy(px, py)[1]:.1f}" for px, py, _ in points)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}">'
        f'<rect width="{size}" height="{size}" fill="white"/>'
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#aaa" stroke-dasharray="4"/>'
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="black"/>'
        f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>'
        f'<polyline points="{path}" fill="none" stroke="#1f77b4"/>{dots}'
        f'<text x="{size / 2}" y="{size - 8}" text-anchor="middle" font-size="12">'
        "predicted churn probability</text>"
        f'<text x="12" y="{size / 2}" font-size="12" transform="rotate(-90 12 {size / 2})" '
        'text-anchor="middle">observed churn rate</text></svg>'
    )


def _table(rows: dict[str, dict], keys: list[str]) -> str:
    lines = ["| candidate | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, metrics in rows.items():
        cells = (f"{metrics[k]:.4g}" if k in metrics else "—" for k in keys)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _selection(metrics: dict) -> str:
    """Which candidate is served, and on what data that was decided."""
    reason = f" ({metrics['reason']})" if "reason" in metrics else ""
    return f"Served: **{metrics['served']}**{reason}. Chosen on {metrics['validation']}."


def write_report(
    result: TrainResult,
    churn: Evaluated,
    pcltv: Evaluated,
    card: dict,
    reports_dir: Path,
    version: str,
) -> Path:
    reports_dir.mkdir(parents=True, exist_ok=True)
    y_churn, p_churn = churn.actual, churn.predicted
    svg_path = reports_dir / f"{version}-churn-calibration.svg"
    svg_path.write_text(calibration_svg(reliability_bins(y_churn, p_churn)))
    churn_metrics = result.metrics["churn"]
    pcltv_metrics = result.metrics["pcltv"]
    churn_keys = ["roc_auc", "pr_auc", "brier", "ece"]
    pcltv_keys = ["mae", "rmse", "rmse_serving_mix", "spearman", "aggregate_error"]
    pcltv_keys.append("top_decile_capture")
    weight = pcltv_metrics.get("blend_weight")
    text = f"""# Training run {version}

## Churn (horizon {churn.artifact.manifest.horizon_days} days)

{_selection(churn_metrics)}

Candidates on the validation cutoff {churn_metrics["validated_on"]} ({churn_metrics["rows"]}
customers):

{_table(churn_metrics["candidates"], churn_keys)}

ONNX vs native max abs difference: {churn_metrics["parity_max_abs"]:.2e}.

![calibration of the served candidate on validation]({svg_path.name})

## pCLTV (horizon {pcltv.artifact.manifest.horizon_days} days)

{_selection(pcltv_metrics)}{f" Blend weight of the trees: {weight:.3f}." if weight else ""}

Candidates on the validation cutoff {pcltv_metrics["validated_on"]} ({pcltv_metrics["rows"]}
customers):

{_table(pcltv_metrics["candidates"], pcltv_keys)}

ONNX vs native max abs difference: {pcltv_metrics["parity_max_abs"]:.2e}
({pcltv_metrics["parity_unit"]}).

## Segment

RFM quantile edges: `{json.dumps(result.metrics["segment"]["bin_edges"])}`

"""
    # Each half on its model's validation cutoff (above).
    text += "\n".join(card_markdown(card))
    path = reports_dir / f"{version}.md"
    path.write_text(text)
    return path

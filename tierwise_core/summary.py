"""Human summary of an environment's GPU capacity, printed after synth."""

from __future__ import annotations

from .config import Environment
from .config.hardware import FAMILIES


def capacity_lines(env: Environment) -> list[str]:
    lines = ["  GPU capacity per pool:"]
    for p in env.gpu_pools:
        gpu = FAMILIES[p.instance_families[0]].gpu.name
        sharing = p.sharing.mode
        if sharing == "mig":
            sharing += " " + "+".join(f"{n}x{prof}" for prof, n in p.sharing.layout.items()) + " per GPU"
        elif sharing == "timeslice":
            sharing += f" x{p.sharing.replicas_per_gpu}"
        models = ", ".join(m.name for m in env.models if m.pool == p.name) or "-"
        lines.append(f"    {p.name:<12} <= {p.gpu_limit:>3} x {gpu:<16} {'/'.join(p.capacity_types):<18} {sharing:<28} models: {models}")
    return lines

#!/usr/bin/env python3
"""irqsim against SimPy on the identical model, benches/peers/mm1-1024.yaml.

1,024 Poisson queues at 7,812.5 interrupts/s each, 64 pinned to each of 16 CPUs, FIFO
service with exponential 1 us handlers: every CPU is an M/M/1 queue at rho = 0.5. SimPy
runs 100 ms of simulated time and irqsim 2 s (so that its start-up, a few milliseconds, is
amortised; each one's speed is per interrupt, so the lengths need not match); the script
prints each one's end-to-end (sojourn) mean, p50 and p99 next to the closed form, and the
speed of each in simulated interrupts per wall-clock second, with irqsim's events per
interrupt and peak memory per queue (perf.json).

What is timed: for SimPy, `env.run` (not building the processes or sorting the sojourns);
for irqsim, perf.json's `wall_s`: building the platform (every queue's interrupt set up),
the run, and assembling the report entry (statistics, tables), not parsing the file or
writing the report, plots and page.

    pip install simpy==4.1.1        # or any 4.x
    cargo build --release --locked
    python3 benches/peers/simpy_compare.py [--irqsim target/release/irqsim] [--duration-ms 100]
        [--irqsim-duration-ms 2000]

The SimPy model is written the way SimPy's documentation models a queue: a process per
queue that sleeps exponential gaps and starts a process per interrupt, which requests its
CPU (a `simpy.Resource` of capacity 1, FIFO), holds it for its service time and records its
sojourn. Percentiles are exact order statistics of every sojourn (irqsim's are from an HDR
histogram within 0.1%).
"""

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time

QUEUES = 1024
CPUS = 16
RATE_PER_QUEUE = 7812.5  # per second
SERVICE_MEAN_US = 1.0


def closed_form():
    lam = QUEUES // CPUS * RATE_PER_QUEUE / 1e6  # per us, per CPU
    mu = 1.0 / SERVICE_MEAN_US
    mean = 1.0 / (mu - lam)
    return {"mean_us": mean, "p50_us": mean * math.log(2.0), "p99_us": mean * math.log(100.0)}


def run_simpy(duration_us, seed):
    import simpy

    rng = random.Random(seed)
    env = simpy.Environment()
    cpus = [simpy.Resource(env, capacity=1) for _ in range(CPUS)]
    sojourns = []
    rate_per_us = RATE_PER_QUEUE / 1e6

    def interrupt(cpu):
        raised = env.now
        with cpu.request() as req:
            yield req
            yield env.timeout(rng.expovariate(1.0 / SERVICE_MEAN_US))
        sojourns.append(env.now - raised)

    def queue(cpu):
        while True:
            yield env.timeout(rng.expovariate(rate_per_us))
            env.process(interrupt(cpu))

    for q in range(QUEUES):
        env.process(queue(cpus[q % CPUS]))
    started = time.perf_counter()
    env.run(until=duration_us)
    wall = time.perf_counter() - started
    sojourns.sort()
    n = len(sojourns)

    def quantile(q):
        return sojourns[min(n - 1, int(math.ceil(q * n)) - 1)]

    return {
        "interrupts": n,
        "wall_s": wall,
        "mean_us": sum(sojourns) / n,
        "p50_us": quantile(0.50),
        "p99_us": quantile(0.99),
    }


def run_irqsim(binary, scenario, duration_ms, seed):
    with tempfile.TemporaryDirectory() as tmp:
        text = open(scenario, encoding="utf-8").read().replace("duration: 50ms", f"duration: {duration_ms}ms")
        path = os.path.join(tmp, "mm1-1024.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        out = os.path.join(tmp, "out")
        subprocess.run([binary, "run", path, "--seed", str(seed), "--out", out, "--quiet"], check=True)
        report = json.load(open(os.path.join(out, "report.json"), encoding="utf-8"))
        perf = json.load(open(os.path.join(out, "perf.json"), encoding="utf-8"))
    stage = next(s for s in report["points"][0]["stages"] if s["stage"] == "end_to_end")
    return {
        "interrupts": stage["count"],
        "wall_s": perf["wall_s"],
        "mean_us": stage["mean_ns"] / 1000.0,
        "p50_us": stage["p50_ns"] / 1000.0,
        "p99_us": stage["p99_ns"] / 1000.0,
        "events_per_interrupt": perf["events_per_interrupt"],
        "bytes_per_queue": perf["bytes_per_queue"],
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--irqsim", default=os.path.join(root, "target", "release", "irqsim"))
    parser.add_argument("--duration-ms", type=int, default=100, help="SimPy's simulated time")
    parser.add_argument("--irqsim-duration-ms", type=int, default=2000, help="irqsim's simulated time")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    theory = closed_form()
    irq = run_irqsim(args.irqsim, os.path.join(here, "mm1-1024.yaml"), args.irqsim_duration_ms, args.seed)
    spy = run_simpy(args.duration_ms * 1000.0, args.seed)
    print(
        f"M/M/1 at rho 0.5, {QUEUES} queues on {CPUS} CPUs, "
        f"{args.irqsim_duration_ms} ms simulated by irqsim, {args.duration_ms} ms by SimPy"
    )
    print(f"{'':10}{'interrupts':>12}{'mean us':>10}{'p50 us':>10}{'p99 us':>10}{'wall s':>10}{'M irq/s':>10}")
    print(f"{'M/M/1':10}{'':>12}{theory['mean_us']:>10.3f}{theory['p50_us']:>10.3f}{theory['p99_us']:>10.3f}")
    for name, r in (("irqsim", irq), ("SimPy", spy)):
        speed = r["interrupts"] / r["wall_s"] / 1e6
        print(
            f"{name:10}{r['interrupts']:>12}{r['mean_us']:>10.3f}{r['p50_us']:>10.3f}{r['p99_us']:>10.3f}"
            f"{r['wall_s']:>10.3f}{speed:>10.3f}"
        )
    print(
        f"irqsim: {irq['events_per_interrupt']:.3f} events per interrupt, "
        f"{irq['bytes_per_queue']:.0f} bytes of peak memory per queue"
    )
    ratio = (irq["interrupts"] / irq["wall_s"]) / (spy["interrupts"] / spy["wall_s"])
    print(f"irqsim / SimPy, simulated interrupts per wall second: {ratio:.0f}x")
    # The answers agree within statistical tolerance: the means within 3% of the closed form.
    for name, r in (("irqsim", irq), ("SimPy", spy)):
        if abs(r["mean_us"] / theory["mean_us"] - 1.0) > 0.03:
            print(f"{name}'s mean is more than 3% from the closed form", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# irqsim sweep as a Slurm job array: task I of N runs shard I of the sweep's runs
# (irqsim takes I from SLURM_ARRAY_TASK_ID, counted from SLURM_ARRAY_TASK_MIN in steps of
# SLURM_ARRAY_TASK_STEP), then one dependent job merges the shards exactly.
#
#   sbatch --array=0-7 docs/cluster/slurm-sweep.sh scenario.yaml 8 results/
#   # when the array is done (or: sbatch --dependency=afterok:JOBID ...):
#   irqsim merge results/shard-* --out results/merged
#
# The array must have exactly N tasks (N is the second argument). A requeued or re-run
# task resumes its shard (--resume): the runs it finished are kept, none is run twice.
#SBATCH --job-name=irqsim-sweep
#SBATCH --cpus-per-task=4
#SBATCH --output=irqsim-sweep-%A_%a.log
set -euo pipefail

scenario=${1:?usage: slurm-sweep.sh SCENARIO.yaml SHARDS RESULTS_DIR}
shards=${2:?usage: slurm-sweep.sh SCENARIO.yaml SHARDS RESULTS_DIR}
results=${3:?usage: slurm-sweep.sh SCENARIO.yaml SHARDS RESULTS_DIR}
irqsim=${IRQSIM:-irqsim}

mkdir -p "$results"
exec "$irqsim" run "$scenario" --shard "auto/$shards" --threads "${SLURM_CPUS_PER_TASK:-1}" \
  --resume --quiet --out "$results/shard-${SLURM_ARRAY_TASK_ID:?not inside a Slurm job array}"

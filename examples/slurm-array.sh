#!/usr/bin/env bash
# One prompts file over 4 SLURM array tasks, all writing into one directory on the cluster's
# shared filesystem.
#
# SLURM gives each task SLURM_ARRAY_TASK_ID (0..3 here); `--shard auto/4` makes it shard 1..4 of 4,
# and refuses to run if the array does not have exactly 4 tasks (SLURM_ARRAY_TASK_COUNT).
#
#   export OPENAI_API_KEY=sk-...        # sbatch passes the environment on
#   sbatch examples/slurm-array.sh
#   sbatch --export=ALL,PROMPTS=big.jsonl,OUT=/scratch/run2 examples/slurm-array.sh
#
# Resubmit the same script after a failure: every task resumes where it stopped (a task still
# running is not disturbed: its shard is locked, and the new task for it exits 2 at once).
#SBATCH --job-name=streamdump
#SBATCH --array=0-3
#SBATCH --cpus-per-task=2
#SBATCH --mem=1G
#SBATCH --time=24:00:00
#SBATCH --output=streamdump-%A_%a.log
set -euo pipefail

PROMPTS=${PROMPTS:-prompts.jsonl}
OUT=${OUT:-out}

exec streamdump run "$PROMPTS" --out-dir "$OUT" --shard auto/4 \
  --results-jsonl "$OUT/results.jsonl" --progress-interval 60
